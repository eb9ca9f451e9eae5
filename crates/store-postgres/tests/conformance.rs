//! The shared storage conformance suite, run against a fresh PostgreSQL database per test
//! (`common/mod.rs`: created for the test, dropped with it, and a clear failure, never a skip,
//! when the server cannot be reached).

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use stele_core::Entry;
use stele_core::chain::Salt;
use stele_core::checkpoint::{PublicKey, SignedCheckpoint};
use stele_core::filter::{EventFilter, PageRequest};
use stele_core::merkle::Hash;
use stele_core::time::Millis;
use stele_store::prelude::*;
use stele_store::rows::RowPage;
use stele_store::{
    ApiKeyInfo, AppendOutcome, AppendRequest, Cutoffs, Erasure, ErasureOutcome, ExpiredBatch,
    ExportJob, ExportJobOutcome, ExportSweep, ExportSweepOutcome, Facets, KeyHash, Member,
    MemberUpdate, NewApiKey, NewExportJob, NewMember, NewSession, OrgId, OrgSettings, Organization,
    Page, RemovedPerChannel, Result, Session, SessionHash, VerifyReport,
};
use stele_store::{
    Classification, Print, PrintAudit, PrintFields, PrintFilter, PrintPage, PrintStats,
};
use stele_store_postgres::PgStore;

/// The store under test, holding its database until it is dropped.
struct TestStore {
    store: PgStore,
    _database: common::TestDatabase,
}

async fn fresh_store() -> Arc<dyn Store> {
    let (store, database, _) = common::fresh_store().await;
    Arc::new(TestStore {
        store,
        _database: database,
    })
}

stele_store::conformance_suite!(fresh_store());

#[async_trait]
impl Tenancy for TestStore {
    async fn create_org(&self, name: &str) -> Result<Organization> {
        self.store.create_org(name).await
    }

    async fn find_org(&self, id_or_name: &str) -> Result<Organization> {
        self.store.find_org(id_or_name).await
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>> {
        self.store.list_orgs().await
    }

    async fn create_api_key(&self, org: OrgId, key: NewApiKey) -> Result<ApiKeyInfo> {
        self.store.create_api_key(org, key).await
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<ApiKeyInfo> {
        self.store.revoke_api_key(key_id).await
    }

    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyInfo>> {
        self.store.list_api_keys(org).await
    }

    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<ApiKeyInfo>> {
        self.store.authenticate(hash).await
    }

    async fn settings(&self, org: OrgId) -> Result<OrgSettings> {
        self.store.settings(org).await
    }

    async fn put_settings(&self, org: OrgId, settings: &OrgSettings) -> Result<()> {
        self.store.put_settings(org, settings).await
    }
}

#[async_trait]
impl Trail for TestStore {
    async fn append(&self, org: OrgId, request: AppendRequest) -> Result<AppendOutcome> {
        self.store.append(org, request).await
    }

    async fn list(&self, org: OrgId, page: &PageRequest) -> Result<Page> {
        self.store.list(org, page).await
    }

    async fn list_rows(&self, org: OrgId, page: &PageRequest) -> Result<RowPage> {
        self.store.list_rows(org, page).await
    }

    async fn count(&self, org: OrgId, filter: &EventFilter) -> Result<(u64, bool)> {
        self.store.count(org, filter).await
    }

    async fn get(&self, org: OrgId, id: &str) -> Result<Option<Entry>> {
        self.store.get(org, id).await
    }

    async fn correlated(
        &self,
        org: OrgId,
        correlation_id: &str,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.store.correlated(org, correlation_id, limit).await
    }

    async fn facets(&self, org: OrgId) -> Result<Facets> {
        self.store.facets(org).await
    }

    async fn erase_actor(&self, org: OrgId, erasure: Erasure) -> Result<ErasureOutcome> {
        self.store.erase_actor(org, erasure).await
    }
}

#[async_trait]
impl Integrity for TestStore {
    async fn checkpoints(&self, org: OrgId, limit: usize) -> Result<Vec<SignedCheckpoint>> {
        self.store.checkpoints(org, limit).await
    }

    async fn checkpoint_key_ids(&self) -> Result<Vec<String>> {
        self.store.checkpoint_key_ids().await
    }

    async fn claim_signing_key(&self, key_id: &str) -> Result<String> {
        self.store.claim_signing_key(key_id).await
    }

    async fn checkpoint_now(&self) -> Result<usize> {
        self.store.checkpoint_now().await
    }

    async fn shutdown(&self) -> Result<()> {
        self.store.shutdown().await
    }

    async fn checkpoint_at(&self, org: OrgId, seq: i64) -> Result<Option<SignedCheckpoint>> {
        self.store.checkpoint_at(org, seq).await
    }

    async fn chain_hashes(&self, org: OrgId, up_to: i64) -> Result<Vec<Hash>> {
        self.store.chain_hashes(org, up_to).await
    }

    async fn personal_digest(&self, org: OrgId, seq: i64) -> Result<Option<(Hash, Option<Salt>)>> {
        self.store.personal_digest(org, seq).await
    }

    async fn verify(&self, org: OrgId, key: Option<&PublicKey>) -> Result<VerifyReport> {
        self.store.verify(org, key).await
    }
}

#[async_trait]
impl Retention for TestStore {
    async fn expired_entries(
        &self,
        org: OrgId,
        cutoffs: &Cutoffs,
        resume_after: i64,
        limit: usize,
    ) -> Result<ExpiredBatch> {
        self.store
            .expired_entries(org, cutoffs, resume_after, limit)
            .await
    }

    async fn prune_entries(
        &self,
        org: OrgId,
        cutoffs: &Cutoffs,
        seqs: &[i64],
    ) -> Result<RemovedPerChannel> {
        self.store.prune_entries(org, cutoffs, seqs).await
    }

    async fn claim_scheduled_run(&self, name: &str, due: Millis) -> Result<bool> {
        self.store.claim_scheduled_run(name, due).await
    }
}

#[async_trait]
impl ExportJobs for TestStore {
    async fn create_export_job(&self, org: OrgId, job: NewExportJob) -> Result<ExportJob> {
        self.store.create_export_job(org, job).await
    }

    async fn export_job(&self, org: OrgId, id: &str) -> Result<Option<ExportJob>> {
        self.store.export_job(org, id).await
    }

    async fn touch_export_job(&self, id: &str, now: Millis) -> Result<bool> {
        self.store.touch_export_job(id, now).await
    }

    async fn finish_export_job(&self, id: &str, outcome: ExportJobOutcome) -> Result<bool> {
        self.store.finish_export_job(id, outcome).await
    }

    async fn add_export_link(&self, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()> {
        self.store.add_export_link(id, token_hash, now).await
    }

    async fn export_job_by_link(
        &self,
        id: &str,
        token_hash: [u8; 32],
    ) -> Result<Option<ExportJob>> {
        self.store.export_job_by_link(id, token_hash).await
    }

    async fn sweep_export_jobs(&self, sweep: ExportSweep) -> Result<ExportSweepOutcome> {
        self.store.sweep_export_jobs(sweep).await
    }

    async fn live_export_job_ids(&self, now: Millis) -> Result<Vec<String>> {
        self.store.live_export_job_ids(now).await
    }
}

#[async_trait]
impl Members for TestStore {
    async fn create_member(&self, org: OrgId, member: NewMember) -> Result<Member> {
        self.store.create_member(org, member).await
    }

    async fn member(&self, org: OrgId, id: &str) -> Result<Option<Member>> {
        self.store.member(org, id).await
    }

    async fn member_by_email(&self, email: &str) -> Result<Option<Member>> {
        self.store.member_by_email(email).await
    }

    async fn list_members(&self, org: OrgId) -> Result<Vec<Member>> {
        self.store.list_members(org).await
    }

    async fn update_member(&self, org: OrgId, id: &str, update: MemberUpdate) -> Result<Member> {
        self.store.update_member(org, id, update).await
    }

    async fn create_session(&self, session: NewSession) -> Result<()> {
        self.store.create_session(session).await
    }

    async fn session(&self, token_hash: &SessionHash, now: Millis) -> Result<Option<Session>> {
        self.store.session(token_hash, now).await
    }

    async fn touch_session(&self, token_hash: &SessionHash, now: Millis) -> Result<()> {
        self.store.touch_session(token_hash, now).await
    }

    async fn revoke_session(&self, token_hash: &SessionHash, now: Millis) -> Result<bool> {
        self.store.revoke_session(token_hash, now).await
    }

    async fn forget_sessions(&self, ended_before: Millis) -> Result<u64> {
        self.store.forget_sessions(ended_before).await
    }
}

#[async_trait]
impl PrintLog for TestStore {
    async fn record_print(
        &self,
        org: OrgId,
        fields: PrintFields,
        audit: PrintAudit,
    ) -> Result<Print> {
        self.store.record_print(org, fields, audit).await
    }

    async fn print(&self, org: OrgId, id: i64) -> Result<Option<Print>> {
        self.store.print(org, id).await
    }

    async fn list_prints(
        &self,
        org: OrgId,
        filter: &PrintFilter,
        limit: u32,
        offset: u64,
    ) -> Result<PrintPage> {
        self.store.list_prints(org, filter, limit, offset).await
    }

    async fn print_stats(&self, org: OrgId, filter: &PrintFilter) -> Result<PrintStats> {
        self.store.print_stats(org, filter).await
    }

    async fn classify_print(
        &self,
        org: OrgId,
        id: i64,
        classification: Classification,
        audit: PrintAudit,
    ) -> Result<(Print, Print)> {
        self.store
            .classify_print(org, id, classification, audit)
            .await
    }

    async fn delete_print(&self, org: OrgId, id: i64, audit: PrintAudit) -> Result<Print> {
        self.store.delete_print(org, id, audit).await
    }

    async fn clear_prints(&self, org: OrgId, audit: PrintAudit) -> Result<u64> {
        self.store.clear_prints(org, audit).await
    }
}
