//! Start-up and shutdown: wires storage, the committer, the dispatcher and the API together.
//! `main` and the integration tests both start hookd through [`App`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use hookd_core::clock::Clock;
use hookd_core::store::{Change, Store};
use hookd_postgres::{PgSettings, PgStore};
use hookd_sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, Shared};
use crate::config::{Settings, redact};
use crate::dispatch::network::NetworkPolicy;
use crate::dispatch::sender::{Sender, ServerTls};
use crate::dispatch::{Dispatcher, EventSink, Events};
use crate::ingest::{Committer, Submission, WeakCommitter};
use crate::metrics::Metrics;
use crate::planner::{Conditions, Origin, Planner};
use crate::presence::Presence;
use crate::service::{Service, key_hash};
use crate::slots::Slots;
use crate::{admin_key, dispatch, ingest, mqtt, retention, service};

/// Whether [`App::serve`] runs the dispatcher loop (when the role has one), or leaves the
/// caller to step it (tests). Everything else a role runs, it runs either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    Loop,
    Manual,
}

pub struct App {
    listener: TcpListener,
    state: AppState,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    committer_task: JoinHandle<()>,
    admin_key: admin_key::AdminKey,
    /// The MQTT door, started by [`App::serve`].
    mqtt: Option<mqtt::Subscriber>,
    presence: Presence,
}

impl App {
    /// Opens storage, binds the listener and starts the committer. Nothing is served until
    /// [`App::serve`].
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let shared_store = open_store(&settings).await?;
        let admin_key = admin_key::load_or_create(&settings)?;
        warn_of_unverified_tls(shared_store.as_ref()).await?;
        let network = Arc::new(NetworkPolicy::new(
            settings.delivery.allow_networks.clone(),
            settings.delivery.restrict_to_networks.clone(),
        ));
        let delivery = &settings.delivery;
        let server_tls = ServerTls::load(
            delivery.tls_ca_file.as_deref(),
            delivery.tls_client_cert_file.as_deref(),
            delivery.tls_client_key_file.as_deref(),
        )?;
        let sender = Sender::new(
            network.clone(),
            settings.delivery.response_body_max,
            settings.dispatch.concurrency,
            server_tls,
        )?;
        let metrics = Metrics::new(settings.metrics.webhook_labels);
        // In one pass, each part from those it needs: the slot ledger and the planner, the
        // committer (which plans with the one and leases through the other), the dispatcher
        // (its operational events ingested through the committer), the service.
        let slots = Slots::new(&settings.dispatch, metrics.clone());
        let sandbox = crate::sandbox::Sandbox::new(&settings.sources);
        let planner = Planner::new(shared_store.clone(), Conditions::new(sandbox.clone(), metrics.clone()));
        let presence_wake = Arc::new(tokio::sync::Notify::new());
        let (committer, committer_task) = Committer::start(
            ingest::Parts {
                store: shared_store.clone(),
                clock: clock.clone(),
                planner: planner.clone(),
                slots: slots.clone(),
                metrics: metrics.clone(),
                max_batch: settings.ingest.max_batch,
                presence: presence_wake.clone(),
            },
            settings.ingest.queue,
        );
        let dispatcher = Dispatcher::new(dispatch::Parts {
            store: shared_store.clone(),
            clock: clock.clone(),
            sender,
            settings: settings.dispatch.clone(),
            slots,
            registry: planner.registry().clone(),
            events: Arc::new(EventsToIngest(committer.downgrade())),
            metrics: metrics.clone(),
        });
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let rate_limit = api::rate_limiter(&settings);
        let presence = Presence::new(
            shared_store.clone(),
            clock.clone(),
            committer.downgrade(),
            presence_wake,
        );
        let service = Service::new(service::Parts {
            store: shared_store.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            committer,
            dispatcher: dispatcher.clone(),
            registry: planner.registry().clone(),
            network,
            sandbox,
        });
        // The bound port (the configured one may be 0) tells processes on one host apart.
        let port = listener.local_addr().map_or(0, |a| a.port());
        let mqtt = settings.mqtt.enabled().then(|| {
            let shared = settings.mqtt.shared.unwrap_or(settings.database_url.is_some());
            mqtt::Subscriber {
                settings: settings.mqtt.clone(),
                client_id: mqtt::client_id(&settings.mqtt, shared, port),
                shared,
                service: service.clone(),
                metrics: metrics.clone(),
                status: mqtt::Status::default(),
            }
        });
        let state = AppState::new(Shared {
            service,
            admin_key_hash: key_hash(&admin_key.key),
            settings,
            metrics,
            rate_limit,
            mqtt: mqtt.as_ref().map(|m| m.status.clone()),
        });
        Ok(Self {
            listener,
            state,
            store: shared_store,
            clock,
            dispatcher,
            committer_task,
            admin_key,
            mqtt,
            presence,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn admin_key(&self) -> &admin_key::AdminKey {
        &self.admin_key
    }

    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The presence sweep, to step it (tests; [`App::serve`] runs it with the dispatcher loop).
    pub fn presence(&self) -> Presence {
        self.presence.clone()
    }

    /// Serves until `shutdown` fires; then stops accepting, finishes requests in flight,
    /// lets attempts in flight finish (or releases them), commits what was acknowledged and
    /// closes the database.
    ///
    /// The role decides, here only, what runs: the API routes for `all` and `api`; the
    /// dispatcher loop (unless the caller steps it) and the pruner for `all` and `worker`.
    pub async fn serve(self, shutdown: CancellationToken, dispatch: Dispatch) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            store,
            clock,
            dispatcher,
            committer_task,
            mqtt,
            presence,
            ..
        } = self;
        let role = state.settings.role;
        let works = role.runs_dispatcher();
        let dispatcher_task =
            (works && dispatch == Dispatch::Loop).then(|| tokio::spawn(dispatcher.clone().run(shutdown.clone())));
        let presence_task = (works && dispatch == Dispatch::Loop).then(|| tokio::spawn(presence.run(shutdown.clone())));
        let pruner_task = works.then(|| {
            let settings = state.settings.retention.clone();
            tokio::spawn(retention::run(
                store.clone(),
                clock.clone(),
                settings,
                state.metrics.clone(),
                shutdown.clone(),
            ))
        });
        let watcher = tokio::spawn(watch_other_processes(
            store.clone(),
            dispatcher.clone(),
            state.service.clone(),
        ));
        // The MQTT door ingests wherever the API does.
        let mqtt_task = mqtt
            .filter(|_| role.runs_api())
            .map(|subscriber| tokio::spawn(subscriber.run(shutdown.clone())));
        let router = api::router(state, role);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("the HTTP server failed")?;
        if let Some(task) = mqtt_task {
            task.await.context("the MQTT door panicked")?;
        }
        if let Some(task) = presence_task {
            task.await.context("the presence sweep panicked")?;
        }
        if let Some(task) = dispatcher_task {
            task.await.context("the dispatcher panicked")?;
        }
        if let Some(task) = pruner_task {
            task.await.context("the pruner panicked")?;
        }
        watcher.abort();
        // Every handle to the committer is gone with the router: it drains and ends.
        committer_task.await.context("the committer panicked")?;
        store.close().await;
        tracing::info!("hookd stopped");
        Ok(())
    }
}

/// The dispatcher's operational events, ingested as records from [`Origin::System`]. The
/// handle is weak: the dispatcher must not keep the committer from stopping at shutdown.
struct EventsToIngest(WeakCommitter);

impl EventSink for EventsToIngest {
    fn ingest(&self, events: Events) -> futures::future::BoxFuture<'static, ()> {
        let committer = self.0.upgrade();
        Box::pin(async move {
            let Some(committer) = committer else { return };
            let submission = Submission {
                workspace_id: events.workspace_id,
                records: events.records,
                idempotency: None,
                origin: Origin::System { about: events.about },
                door: None,
            };
            if let Err(err) = committer.submit(submission).await {
                tracing::warn!(error = %err, "an operational event could not be recorded");
            }
        })
    }
}

/// Says at every start which webhooks accept any certificate (`tls.verify: false`).
async fn warn_of_unverified_tls(store: &dyn Store) -> anyhow::Result<()> {
    let workspaces: Vec<String> = store.list_workspaces().await?.into_iter().map(|w| w.id).collect();
    if workspaces.is_empty() {
        return Ok(());
    }
    for webhook in store.enabled_webhooks(&workspaces).await? {
        if webhook.spec.tls.skip_verify {
            tracing::warn!(
                webhook = %webhook.id,
                workspace = %webhook.workspace_id,
                "TLS certificate verification is off for this webhook (tls.verify = false): its deliveries can be read and changed on the way"
            );
        }
    }
    Ok(())
}

/// Acts on what other processes change (PostgreSQL's NOTIFY): new work wakes the dispatcher,
/// a revoked key or deleted workspace makes the service forget what it remembered of them, a
/// changed webhook makes the planner read the enabled webhooks again.
async fn watch_other_processes(store: Arc<dyn Store>, dispatcher: Dispatcher, service: Service) {
    let on = |change: Change| match change {
        Change::Work => dispatcher.wake(),
        Change::Credentials => service.credentials_changed(),
        Change::Webhooks => service.webhooks_changed_anywhere(),
    };
    // Returns at once for a store that serves one process, and when the store closes.
    while let Err(err) = store.watch(&on).await {
        tracing::warn!(error = ?err, "cannot hear of other processes' changes; trying again in 5s");
        // What changed meanwhile is unknown: remembered keys may have been revoked, webhooks
        // changed.
        service.credentials_changed();
        service.webhooks_changed_anywhere();
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// Opens the database the settings name: PostgreSQL when `database_url` is set, else the
/// embedded SQLite file in the data directory.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let sealer = Arc::new(settings.secrets.sealer()?);
    if let Some(url) = &settings.database_url {
        let db = &settings.database;
        let pg = PgSettings {
            url: url.clone(),
            max_connections: db.max_connections,
            acquire_timeout: db.acquire_timeout,
            statement_timeout: db.statement_timeout,
            schema: db.schema.clone(),
        };
        let store = PgStore::connect(&pg)
            .await
            .with_context(|| format!("cannot open the database {}", redact(url)))?
            .with_sealer(sealer);
        return reseal(Arc::new(store)).await;
    }
    prepare_data_dir(&settings.data_dir)?;
    let database = settings.database_path();
    // An earlier start left these; without its database, starting empty would silently lose
    // everything that was acknowledged.
    let traces = ["admin.key", "hookd.db-wal"].map(|f| settings.data_dir.join(f));
    if !database.exists() && traces.iter().any(|t| t.exists()) {
        anyhow::bail!(
            "{} has no database ({} is missing) although hookd ran there before: restore the database, or point --data-dir at an empty directory to start afresh",
            settings.data_dir.display(),
            database.display()
        );
    }
    let store = SqliteStore::open(&database)
        .await
        .with_context(|| format!("cannot open the database {}", settings.database_path().display()))?
        .with_sealer(sealer);
    reseal(Arc::new(store)).await
}

/// Brings stored secrets into the configured keys' form, so a key added or rotated takes
/// effect on every webhook, and a key removed too early stops the start with its id.
async fn reseal(store: Arc<dyn Store>) -> anyhow::Result<Arc<dyn Store>> {
    let changed = store
        .reseal_webhooks()
        .await
        .context("cannot read the stored webhook secrets with the configured secrets.encryption_keys")?;
    let sources = store
        .reseal_sources()
        .await
        .context("cannot read the stored source secrets with the configured secrets.encryption_keys")?;
    if changed + sources > 0 {
        tracing::info!(
            webhooks = changed,
            sources,
            "re-encrypted stored secrets with the current key"
        );
    }
    Ok(store)
}

fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    if !dir.is_dir() {
        anyhow::bail!("the data directory {} is not a directory", dir.display());
    }
    Ok(())
}
