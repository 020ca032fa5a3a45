use super::*;
use crate::source::{Source, SourceSpec};

pub(super) async fn source(store: &dyn Store, workspace: &str, name: &str) -> Source {
    let spec = SourceSpec::parse(&json!({"name": name, "scheme": "github", "secret": "s3cret"})).unwrap();
    let source = Source {
        id: new_id("src"),
        workspace_id: workspace.into(),
        spec,
        created_at: T0,
        updated_at: T0,
    };
    store.insert_source(&source).await.unwrap();
    source
}

fn logged(source: &Source, at: Millis, outcome: RequestOutcome) -> SourceRequest {
    SourceRequest {
        id: new_id("req"),
        workspace_id: source.workspace_id.clone(),
        source_id: source.id.clone(),
        received_at: at,
        method: "POST".into(),
        headers: r#"{"content-type":"application/json"}"#.into(),
        query: "{}".into(),
        body: vec![0xff, b'{', b'}'],
        body_truncated: false,
        outcome,
        reason: (outcome != RequestOutcome::Accepted).then(|| "bad_signature".into()),
        explanation: "why".into(),
        record_ids: vec!["rec_1".into(), "rec_2".into()],
    }
}

/// Sources are kept per workspace, changed, found by id alone for their door, and deleted
/// with their log.
pub async fn sources_are_stored_within_their_workspace(store: &dyn Store) {
    let f = fixture(store).await;
    let other = fixture(store).await;
    let mut mine = source(store, &f.workspace, "a").await;
    source(store, &other.workspace, "b").await;
    assert_eq!(
        store.get_source(&f.workspace, &mine.id).await.unwrap(),
        Some(mine.clone())
    );
    assert_eq!(
        store.get_source(&other.workspace, &mine.id).await.unwrap(),
        None,
        "not another workspace's"
    );
    assert_eq!(store.find_source(&mine.id).await.unwrap(), Some(mine.clone()));
    assert_eq!(store.list_sources(&f.workspace).await.unwrap(), [mine.clone()]);
    mine.spec.name = "renamed".into();
    mine.updated_at = T0 + 1;
    store.update_source(&mine).await.unwrap();
    assert_eq!(store.find_source(&mine.id).await.unwrap().unwrap().spec.name, "renamed");
    store
        .log_source_request(&logged(&mine, T0, RequestOutcome::Accepted))
        .await
        .unwrap();
    store.delete_source(&f.workspace, &mine.id).await.unwrap();
    assert!(store.find_source(&mine.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_source(&f.workspace, &mine.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(store.update_source(&mine).await, Err(StoreError::NotFound)));
    assert!(
        store
            .list_source_requests(
                &f.workspace,
                &mine.id,
                &SourceRequestQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty(),
        "its log went with it"
    );
}

/// The log keeps requests as received (bytes that are not UTF-8 too), newest first, by
/// outcome and cursor; a request logged again replaces itself; retention prunes it.
pub async fn the_request_log_is_listed_filtered_replaced_and_pruned(store: &dyn Store) {
    let f = fixture(store).await;
    let src = source(store, &f.workspace, "a").await;
    let first = logged(&src, T0, RequestOutcome::Failed);
    let second = logged(&src, T0 + 5, RequestOutcome::Rejected);
    let third = logged(&src, T0 + 20, RequestOutcome::Accepted);
    for r in [&first, &second, &third] {
        store.log_source_request(r).await.unwrap();
    }
    let query = |outcome, after| SourceRequestQuery {
        outcome,
        limit: 10,
        after,
    };
    let all = store
        .list_source_requests(&f.workspace, &src.id, &query(None, None))
        .await
        .unwrap();
    assert_eq!(all, [third.clone(), second.clone(), first.clone()]);
    let failed = store
        .list_source_requests(&f.workspace, &src.id, &query(Some(RequestOutcome::Failed), None))
        .await
        .unwrap();
    assert_eq!(failed, std::slice::from_ref(&first));
    let older = store
        .list_source_requests(&f.workspace, &src.id, &query(None, Some(second.id.clone())))
        .await
        .unwrap();
    assert_eq!(older, std::slice::from_ref(&first));
    let recovered = SourceRequest {
        outcome: RequestOutcome::Accepted,
        reason: None,
        record_ids: vec!["rec_9".into()],
        ..first.clone()
    };
    store.log_source_request(&recovered).await.unwrap();
    assert_eq!(
        store
            .get_source_request(&f.workspace, &src.id, &first.id)
            .await
            .unwrap(),
        Some(recovered)
    );
    assert_eq!(
        store
            .get_source_request(&f.workspace, "src_other", &first.id)
            .await
            .unwrap(),
        None
    );
    let cutoffs = PruneCutoffs {
        delivered_before: T0 + 10,
        failed_before: T0 + 10,
        records_before: 0,
        keys_before: 0,
    };
    assert_eq!(
        store.prune(&cutoffs, 100).await.unwrap().source_requests,
        2,
        "the two before the cutoffs"
    );
    let left = store
        .list_source_requests(&f.workspace, &src.id, &query(None, None))
        .await
        .unwrap();
    assert_eq!(left, [third]);
}

/// A message id is taken once within its window, by one of many concurrent callers, and
/// again once the window has passed.
pub async fn a_message_is_remembered_once_until_its_window_ends(store: &dyn Store) {
    let f = fixture(store).await;
    let src = source(store, &f.workspace, "a").await;
    let tries =
        futures::future::join_all((0..8).map(|_| store.remember_message(&src.id, "msg_1", T0, T0 + 300_000))).await;
    let firsts = tries.into_iter().map(Result::unwrap).filter(|first| *first).count();
    assert_eq!(firsts, 1, "exactly one caller takes a message");
    assert!(
        !store
            .remember_message(&src.id, "msg_1", T0 + 299_999, T0 + 599_999)
            .await
            .unwrap()
    );
    assert!(
        store
            .remember_message(&src.id, "msg_2", T0, T0 + 300_000)
            .await
            .unwrap(),
        "another message"
    );
    assert!(
        store
            .remember_message(&src.id, "msg_1", T0 + 300_000, T0 + 600_000)
            .await
            .unwrap(),
        "after its window"
    );
    assert!(
        !store
            .remember_message(&src.id, "msg_1", T0 + 300_001, T0 + 600_001)
            .await
            .unwrap(),
        "a new window"
    );
}
