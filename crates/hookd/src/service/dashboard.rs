//! What the dashboard door needs beyond the API's operations: sign-ins (server-side sessions
//! on a random cookie), portal links, and the attempt tallies its charts read.
//!
//! A pass is stored by the SHA-256 of its token. Every request re-checks what the pass stands
//! on, so revoking the key it was made with (or the link it was opened from) ends it at once,
//! in every process.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookd_core::clock::Millis;
use hookd_core::signature::constant_time_eq;
use hookd_core::store::{Access, Pass, Tally, TallyQuery};
use rand::RngCore;

use super::{Service, ServiceError, ServiceResult, key_hash};

/// A pass just made, with the token only its holder sees.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub pass: Pass,
}

fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn millis(duration: Duration) -> Millis {
    duration.as_millis().min(i64::MAX as u128) as Millis
}

impl Service {
    /// Starts a sign-in for `key` (the admin key, hashed to `admin_hash`, or a workspace key)
    /// lasting `ttl`; `None` for a key that is neither.
    pub async fn sign_in(&self, key: &str, admin_hash: &str, ttl: Duration) -> ServiceResult<Option<Issued>> {
        let hash = key_hash(key.trim());
        let (workspace_id, access) = if constant_time_eq(hash.as_bytes(), admin_hash.as_bytes()) {
            (None, Access::Admin)
        } else if let Some(found) = self.authenticate(&hash).await? {
            (Some(found.workspace_id), Access::Manage)
        } else {
            return Ok(None);
        };
        self.issue(false, hash, workspace_id, access, ttl).await.map(Some)
    }

    async fn issue(
        &self,
        link: bool,
        granted_by: String,
        workspace_id: Option<String>,
        access: Access,
        ttl: Duration,
    ) -> ServiceResult<Issued> {
        let token = token();
        let now = self.now();
        let pass = Pass {
            id: key_hash(&token),
            link,
            granted_by,
            workspace_id,
            access,
            csrf: if link { String::new() } else { self::token() },
            created_at: now,
            expires_at: now.saturating_add(millis(ttl)),
        };
        self.store().insert_pass(&pass).await?;
        Ok(Issued { token, pass })
    }

    /// The sign-in whose cookie is `token`, if it has not expired and what it stands on still
    /// holds.
    pub async fn signed_in(&self, token: &str, admin_hash: &str) -> ServiceResult<Option<Pass>> {
        let now = self.now();
        let Some(pass) = self.store().get_pass(&key_hash(token), now).await? else {
            return Ok(None);
        };
        if pass.link {
            return Ok(None);
        }
        Ok(self.grant_holds(&pass, admin_hash, now, true).await?.then_some(pass))
    }

    /// Whether the key (or, once, the portal link) `pass` was made from is still good for it.
    async fn grant_holds(&self, pass: &Pass, admin_hash: &str, now: Millis, via_link: bool) -> ServiceResult<bool> {
        if constant_time_eq(pass.granted_by.as_bytes(), admin_hash.as_bytes()) {
            return Ok(true);
        }
        if let Some(key) = self.authenticate(&pass.granted_by).await? {
            return Ok(pass.workspace_id.as_deref() == Some(key.workspace_id.as_str()));
        }
        if !via_link {
            return Ok(false);
        }
        let Some(link) = self.store().get_pass(&pass.granted_by, now).await? else {
            return Ok(false);
        };
        Ok(link.link
            && link.workspace_id == pass.workspace_id
            && Box::pin(self.grant_holds(&link, admin_hash, now, false)).await?)
    }

    /// Ends a sign-in.
    pub async fn sign_out(&self, token: &str) -> ServiceResult<()> {
        self.store().delete_pass(&key_hash(token)).await?;
        Ok(())
    }

    /// A portal link to `workspace_id`, made by the signed-in `by`, expiring after `ttl`.
    pub async fn make_link(
        &self,
        by: &Pass,
        workspace_id: &str,
        access: Access,
        ttl: Duration,
    ) -> ServiceResult<Issued> {
        if access == Access::Admin || by.access == Access::Read || by.link {
            return Err(ServiceError::Conflict {
                code: "forbidden",
                message: "a portal link is made by a managing sign-in, for one workspace".into(),
            });
        }
        self.issue(true, by.granted_by.clone(), Some(workspace_id.to_owned()), access, ttl)
            .await
    }

    /// Opens a portal link: a sign-in scoped as the link is, lasting `ttl` at most (and no
    /// longer than the link); `None` for an unknown, expired or revoked link.
    pub async fn open_link(&self, token: &str, admin_hash: &str, ttl: Duration) -> ServiceResult<Option<Issued>> {
        let now = self.now();
        let Some(link) = self.store().get_pass(&key_hash(token), now).await? else {
            return Ok(None);
        };
        if !link.link || !self.grant_holds(&link, admin_hash, now, false).await? {
            return Ok(None);
        }
        let ttl = ttl.min(Duration::from_millis((link.expires_at - now).max(0) as u64));
        self.issue(false, link.id.clone(), link.workspace_id.clone(), link.access, ttl)
            .await
            .map(Some)
    }

    /// The workspace's portal links that have not expired, newest first.
    pub async fn links(&self, workspace_id: &str) -> ServiceResult<Vec<Pass>> {
        Ok(self.store().list_links(workspace_id, self.now()).await?)
    }

    /// Revokes one of the workspace's portal links, and every sign-in opened from it.
    pub async fn revoke_link(&self, workspace_id: &str, id: &str) -> ServiceResult<()> {
        let links = self.links(workspace_id).await?;
        if !links.iter().any(|l| l.id == id) {
            return Err(ServiceError::NotFound("portal link"));
        }
        self.store().delete_pass(id).await?;
        Ok(())
    }

    /// Attempt tallies per minute, oldest first.
    pub async fn tallies_by_minute(&self, query: &TallyQuery) -> ServiceResult<Vec<(Millis, Tally)>> {
        Ok(self.store().tallies_by_minute(query).await?)
    }

    /// Each webhook's attempt tally since `since`.
    pub async fn tallies_by_webhook(&self, workspace_id: &str, since: Millis) -> ServiceResult<Vec<(String, Tally)>> {
        Ok(self.store().tallies_by_webhook(workspace_id, since).await?)
    }
}
