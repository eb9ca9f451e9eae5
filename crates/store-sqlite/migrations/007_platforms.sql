-- Platforms (docs/platforms.md): an organization may carry the platform's own id for it, by
-- which requests name it, and one organization is the platform's own (its trail records what is
-- done to organizations; platform keys belong to it).
ALTER TABLE orgs ADD COLUMN external_id TEXT;
ALTER TABLE orgs ADD COLUMN platform INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX orgs_external_id ON orgs (external_id);
CREATE UNIQUE INDEX orgs_one_platform ON orgs (platform) WHERE platform = 1;
