-- Platforms (docs/platforms.md): an organization may carry the platform's own id for it, by
-- which requests name it, and one organization is the platform's own (its trail records what is
-- done to organizations; platform keys belong to it).
ALTER TABLE orgs ADD COLUMN external_id text UNIQUE;
ALTER TABLE orgs ADD COLUMN platform boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX orgs_one_platform ON orgs (platform) WHERE platform;
