//! What the dashboard reads: attempt tallies per minute; its sign-ins and portal links.

use super::*;

pub async fn attempts_are_tallied_per_minute_and_per_webhook(store: &dyn Store) {
    let f = fixture(store).await;
    let second = webhook(store, &f.workspace).await;
    let other = fixture(store).await;
    let minute = minute_of(T0) + 60_000;
    ingest(store, &f.webhook, 3, minute).await;
    ingest(store, &second, 1, minute).await;
    ingest(store, &other.webhook, 1, minute).await;
    let claimed = store.claim_due(&claim_request(minute + 10, 10)).await.unwrap();
    assert_eq!(claimed.len(), 5);
    let mut finishes = Vec::new();
    let mut ours = 0;
    for c in &claimed {
        let (state, at) = if c.webhook.id == f.webhook.id {
            ours += 1;
            // Two in this minute (one slow, one failing), one in the next.
            match ours {
                1 => (DeliveryState::Delivered, minute + 10),
                2 => (DeliveryState::Pending, minute + 20),
                _ => (DeliveryState::Dead, minute + 60_000),
            }
        } else {
            (DeliveryState::Delivered, minute + 30)
        };
        let mut finish = finish_of(c, state, at);
        if ours == 2 && c.webhook.id == f.webhook.id {
            finish.attempt.duration_ms = 700;
        }
        finishes.push(finish);
    }
    assert!(store.finish_many(&finishes).await.unwrap().iter().all(|w| *w));

    let query = TallyQuery {
        workspace_id: f.workspace.clone(),
        webhook_id: Some(f.webhook.id.to_string()),
        since: minute,
    };
    let minutes = store.tallies_by_minute(&query).await.unwrap();
    assert_eq!(minutes.len(), 2, "{minutes:?}");
    let (first, next) = (&minutes[0], &minutes[1]);
    assert_eq!(first.0, minute);
    assert_eq!((first.1.delivered, first.1.retrying, first.1.failed), (1, 1, 0));
    assert_eq!(first.1.latency_quantile(0.5), Some(5), "3 ms is in the first bucket");
    assert_eq!(
        first.1.latency_quantile(0.99),
        Some(1_000),
        "700 ms is in the (500, 1000] bucket"
    );
    assert_eq!((next.0, next.1.failed), (minute + 60_000, 1));

    let whole = store
        .tallies_by_minute(&TallyQuery {
            webhook_id: None,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        whole[0].1.delivered, 2,
        "both webhooks of the workspace, not the other's"
    );
    let later = store
        .tallies_by_minute(&TallyQuery {
            since: minute + 60_000,
            ..query
        })
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "from `since` on");

    let mut by_webhook = store.tallies_by_webhook(&f.workspace, minute).await.unwrap();
    by_webhook.sort_by_key(|(id, _)| id.clone());
    let mut expected = vec![(f.webhook.id.to_string(), 3), (second.id.to_string(), 1)];
    expected.sort();
    assert_eq!(
        by_webhook
            .iter()
            .map(|(id, t)| (id.clone(), t.attempts()))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        by_webhook
            .iter()
            .find(|(id, _)| *id == f.webhook.id.as_str())
            .unwrap()
            .1
            .success_rate(),
        Some(1.0 / 3.0)
    );

    // A second batch in the same minute adds to it.
    ingest(store, &f.webhook, 1, minute).await;
    let claimed = store.claim_due(&claim_request(minute + 40, 10)).await.unwrap();
    store
        .finish(&finish_of(&claimed[0], DeliveryState::Delivered, minute + 40))
        .await
        .unwrap();
    let minutes = store
        .tallies_by_minute(&TallyQuery {
            workspace_id: f.workspace.clone(),
            webhook_id: Some(f.webhook.id.to_string()),
            since: minute,
        })
        .await
        .unwrap();
    assert_eq!(minutes[0].1.delivered, 2);
}

fn pass(workspace: Option<&str>, link: bool, granted_by: &str, expires_at: Millis) -> Pass {
    Pass {
        id: new_id("pass"),
        link,
        granted_by: granted_by.into(),
        workspace_id: workspace.map(str::to_owned),
        access: if workspace.is_some() {
            Access::Manage
        } else {
            Access::Admin
        },
        csrf: new_id("csrf"),
        created_at: T0,
        expires_at,
    }
}

pub async fn passes_expire_are_deleted_with_what_they_granted_and_links_are_listed(store: &dyn Store) {
    let f = fixture(store).await;
    let other = fixture(store).await;
    let admin = pass(None, false, "admin-hash", T0 + 1_000);
    store.insert_pass(&admin).await.unwrap();
    assert_eq!(store.get_pass(&admin.id, T0 + 999).await.unwrap(), Some(admin.clone()));
    assert_eq!(store.get_pass(&admin.id, T0 + 1_000).await.unwrap(), None, "expired");
    assert_eq!(store.get_pass("nope", T0).await.unwrap(), None);

    let link = Pass {
        access: Access::Read,
        ..pass(Some(&f.workspace), true, "key-hash", T0 + 10_000)
    };
    let theirs = pass(Some(&other.workspace), true, "key-hash-2", T0 + 10_000);
    let expired_link = pass(Some(&f.workspace), true, "key-hash", T0 + 10);
    for p in [&link, &theirs, &expired_link] {
        store.insert_pass(p).await.unwrap();
    }
    let opened = Pass {
        link: false,
        granted_by: link.id.clone(),
        ..pass(Some(&f.workspace), false, "", T0 + 10_000)
    };
    store.insert_pass(&opened).await.unwrap();
    let links = store.list_links(&f.workspace, T0 + 100).await.unwrap();
    assert_eq!(
        links,
        vec![link.clone()],
        "the workspace's own unexpired links, not sign-ins"
    );

    assert!(store.delete_pass(&link.id).await.unwrap());
    assert_eq!(
        store.get_pass(&opened.id, T0).await.unwrap(),
        None,
        "what the link granted goes with it"
    );
    assert!(!store.delete_pass(&link.id).await.unwrap(), "once");
    assert!(store.get_pass(&theirs.id, T0).await.unwrap().is_some());

    // A new pass clears the expired ones away.
    let later = Pass {
        created_at: T0 + 5_000,
        ..pass(None, false, "admin-hash", T0 + 20_000)
    };
    store.insert_pass(&later).await.unwrap();
    assert_eq!(
        store.get_pass(&admin.id, 0).await.unwrap(),
        None,
        "deleted, not only hidden"
    );

    store.delete_workspace(&other.workspace).await.unwrap();
    assert_eq!(
        store.get_pass(&theirs.id, T0).await.unwrap(),
        None,
        "with its workspace"
    );
}
