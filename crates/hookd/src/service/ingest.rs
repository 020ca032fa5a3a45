//! Records in: from any door, committed with their deliveries before the answer.

use hookd_core::record::RecordIn;
use hookd_core::store::{Idempotency, IngestResult, StoreError};

use super::{Service, ServiceError, ServiceResult};
use crate::ingest::{Submission, SubmitError};
use crate::planner::Origin;

impl Service {
    /// Commits `records` of the workspace, from `origin`, with their deliveries; answers once
    /// they are on disk with their ids (the first request's ids for a repeated idempotency key).
    pub async fn ingest(
        &self,
        workspace_id: &str,
        origin: Origin,
        records: Vec<RecordIn>,
        idempotency: Option<Idempotency>,
    ) -> ServiceResult<Vec<String>> {
        let submission = Submission {
            workspace_id: workspace_id.to_owned(),
            records,
            idempotency,
            origin,
            door: None,
        };
        match self.submit(submission).await? {
            IngestResult::Committed(ids) | IngestResult::Replayed(ids) => Ok(ids),
            IngestResult::KeyConflict => Err(ServiceError::Conflict {
                code: "idempotency_key_reused",
                message: "this Idempotency-Key was already used with a different body".into(),
            }),
            IngestResult::MessageSeen => Err(ServiceError::Internal(anyhow::anyhow!(
                "a message id was checked for records that came through no door"
            ))),
        }
    }

    /// Hands a submission to the committer; answers once it is committed (or refused).
    pub(super) async fn submit(&self, submission: Submission) -> ServiceResult<IngestResult> {
        self.inner
            .parts
            .committer
            .submit(submission)
            .await
            .map_err(|err| match err {
                SubmitError::Stopped => ServiceError::Unavailable,
                SubmitError::Store(store) => match &*store {
                    StoreError::Unavailable(_) => ServiceError::Unavailable,
                    _ => ServiceError::Internal(anyhow::anyhow!("ingest commit failed: {store}")),
                },
            })
    }
}
