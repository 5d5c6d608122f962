//! Redis as LibreNMS's dispatcher service uses it (`LibreNMS/__init__.py`:
//! `RedisLock`, `RedisUniqueQueue`): plain keys in `REDIS_DB`, locks
//! `librenms.lock:<name>` holding their owner's name with a lifetime, and
//! queues `librenms.queue:<type>:<group>`, sorted sets of payloads scored
//! by the time they were queued.
//!
//! One shared multiplexed connection serves every short command; each
//! blocking pop gets a connection of its own (a blocking command would
//! stall every other caller of a shared one). A failed command drops the
//! connection, and the next one connects again: through Sentinel when it
//! is configured, so a failover is followed. Each change between reachable
//! and not is logged once.
//!
//! Unlike LibreNMS's GET-then-DEL, an unlock is one compare-and-delete
//! script, so a lock that expired and was taken by another node is never
//! deleted by its old owner; the Python side's unlock stays safe against
//! it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    RedisError, Script, TlsMode,
};
use tokio::sync::Mutex;

use crate::config::Settings;

pub const LOCK_NAMESPACE: &str = "librenms.lock";
pub const QUEUE_NAMESPACE: &str = "librenms.queue";

/// Compare-and-delete: the lock goes only if `owner` still holds it.
const UNLOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Redis did not answer, or refused a command. Never holds a password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{server}: {why}")]
pub struct RedisDown {
    pub server: String,
    pub why: String,
}

enum Target {
    Direct(Client),
    /// Asked again for the master at every connection.
    Sentinel(Mutex<SentinelClient>),
}

pub struct Redis {
    target: Target,
    /// Where, without secrets, for messages.
    server: String,
    /// Seconds a command may take (`REDIS_TIMEOUT`).
    timeout: Duration,
    shared: Mutex<Option<MultiplexedConnection>>,
    reachable: AtomicBool,
    unlock: Script,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("server", &self.server)
            .finish()
    }
}

impl Redis {
    /// The Redis the settings name (`REDIS_*`). Nothing is connected yet.
    pub fn new(settings: &Settings) -> Result<Redis, String> {
        install_tls_provider();
        let r = &settings.redis;
        let tls = r.scheme.eq_ignore_ascii_case("tls");
        let password = String::from_utf8_lossy(r.password.expose()).into_owned();
        let password = password.as_str();
        let mut info = RedisConnectionInfo::default().set_db(r.db);
        if !r.username.is_empty() {
            info = info.set_username(&r.username);
        }
        if !password.is_empty() {
            info = info.set_password(password);
        }
        let (target, server) = if !r.sentinel.is_empty() {
            if r.sentinel_service.is_empty() {
                return Err("REDIS_SENTINEL is set without REDIS_SENTINEL_SERVICE".into());
            }
            let mut sentinels = Vec::new();
            for s in r
                .sentinel
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (host, port) = s
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| format!("REDIS_SENTINEL: {s:?} is not host:port"))?;
                sentinels.push(ConnectionAddr::Tcp(host, port));
            }
            let d = &settings.dispatcher;
            let mut b = SentinelClientBuilder::new(
                sentinels,
                &r.sentinel_service,
                SentinelServerType::Master,
            )
            .map_err(|e| e.to_string())?
            .set_client_to_redis_db(r.db);
            if !r.username.is_empty() {
                b = b.set_client_to_redis_username(&r.username);
            }
            if !password.is_empty() {
                b = b.set_client_to_redis_password(password);
            }
            if tls {
                b = b.set_client_to_redis_tls_mode(TlsMode::Secure);
            }
            if !d.sentinel_username.is_empty() {
                b = b.set_client_to_sentinel_username(&d.sentinel_username);
            }
            if !d.sentinel_password.expose().is_empty() {
                let p = String::from_utf8_lossy(d.sentinel_password.expose()).into_owned();
                b = b.set_client_to_sentinel_password(p);
            }
            let client = b.build().map_err(|e| e.to_string())?;
            (
                Target::Sentinel(Mutex::new(client)),
                format!(
                    "redis service {} via sentinel {}",
                    r.sentinel_service, r.sentinel
                ),
            )
        } else {
            let (addr, server) = if !r.socket.is_empty() {
                (
                    ConnectionAddr::Unix(r.socket.clone().into()),
                    format!("redis at {}", r.socket),
                )
            } else if tls {
                (
                    ConnectionAddr::TcpTls {
                        host: r.host.clone(),
                        port: r.port,
                        insecure: false,
                        tls_params: None,
                    },
                    format!("redis at tls://{}:{}", r.host, r.port),
                )
            } else {
                (
                    ConnectionAddr::Tcp(r.host.clone(), r.port),
                    format!("redis at {}:{}", r.host, r.port),
                )
            };
            let info = addr
                .into_connection_info()
                .map_err(|e| e.to_string())?
                .set_redis_settings(info);
            (
                Target::Direct(Client::open(info).map_err(|e| e.to_string())?),
                server,
            )
        };
        Ok(Redis {
            target,
            server: format!("{server} db {}", r.db),
            timeout: Duration::from_secs(u64::from(r.timeout.max(1))),
            shared: Mutex::new(None),
            reachable: AtomicBool::new(true),
            unlock: Script::new(UNLOCK),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn down(&self, e: impl std::fmt::Display) -> RedisDown {
        RedisDown {
            server: self.server.clone(),
            why: e.to_string(),
        }
    }

    /// Logs the first failure after success and the first success after
    /// failures.
    fn note<T>(&self, r: Result<T, RedisDown>) -> Result<T, RedisDown> {
        match &r {
            Ok(_) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(redis = %self.server, "redis answers again");
                }
            }
            Err(e) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "no device is polled without its lock until it answers");
                }
            }
        }
        r
    }

    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, RedisDown> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(response_timeout);
        let conn = match &self.target {
            Target::Direct(c) => {
                c.get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            Target::Sentinel(s) => {
                s.lock()
                    .await
                    .get_async_connection_with_config(&config)
                    .await
            }
        };
        conn.map_err(|e| self.down(e))
    }

    /// Runs one command (or pipeline) on the shared connection.
    pub async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, RedisDown> {
        let mut conn = {
            let mut shared = self.shared.lock().await;
            match shared.as_ref() {
                Some(c) => c.clone(),
                None => match self.connect(Some(self.timeout)).await {
                    Ok(c) => {
                        *shared = Some(c.clone());
                        c
                    }
                    Err(e) => return self.note(Err(e)),
                },
            }
        };
        let r = command(&mut conn).await;
        if let Err(e) = &r
            && (e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.code() == Some("READONLY"))
        {
            // Gone, or a replica now (a failover): connect again next time.
            *self.shared.lock().await = None;
        }
        self.note(r.map_err(|e| self.down(e)))
    }

    /// A connection of its own for blocking pops, without a response
    /// timeout (the pop's own timeout bounds it).
    pub async fn blocking_connection(&self) -> Result<MultiplexedConnection, RedisDown> {
        let r = self.connect(None).await;
        self.note(r)
    }

    fn lock_key(name: &str) -> String {
        format!("{LOCK_NAMESPACE}:{name}")
    }

    /// `RedisLock.lock`: `SET key owner EX ttl NX`, without the NX when
    /// `allow_owner_relock` and `owner` already holds it (a refresh). TTL at
    /// least 1 s.
    pub async fn lock(
        &self,
        name: &str,
        owner: &str,
        ttl: u64,
        allow_owner_relock: bool,
    ) -> Result<bool, RedisDown> {
        let key = Self::lock_key(name);
        let ttl = ttl.max(1);
        self.run(async |c| {
            let mut nx = true;
            if allow_owner_relock {
                let holder: Option<String> = redis::cmd("GET").arg(&key).query_async(c).await?;
                nx = holder.as_deref() != Some(owner);
            }
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(owner).arg("EX").arg(ttl);
            if nx {
                cmd.arg("NX");
            }
            let set: Option<String> = cmd.query_async(c).await?;
            Ok(set.is_some())
        })
        .await
    }

    /// Releases the lock if `owner` still holds it; true when it did.
    pub async fn unlock(&self, name: &str, owner: &str) -> Result<bool, RedisDown> {
        let key = Self::lock_key(name);
        self.run(async |c| {
            let n: i64 = self.unlock.key(&key).arg(owner).invoke_async(c).await?;
            Ok(n == 1)
        })
        .await
    }

    /// Who holds a lock now.
    pub async fn holder(&self, name: &str) -> Result<Option<String>, RedisDown> {
        let key = Self::lock_key(name);
        self.run(async |c| redis::cmd("GET").arg(&key).query_async(c).await)
            .await
    }

    /// Which of `names` are locked now, in one round trip.
    pub async fn locked(&self, names: &[String]) -> Result<Vec<bool>, RedisDown> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.run(async |c| {
            let mut p = redis::pipe();
            for n in names {
                p.cmd("EXISTS").arg(Self::lock_key(n));
            }
            let found: Vec<i64> = p.query_async(c).await?;
            Ok(found.into_iter().map(|n| n > 0).collect())
        })
        .await
    }

    pub fn queue_key(kind: &str, group: i64) -> String {
        format!("{QUEUE_NAMESPACE}:{kind}:{group}")
    }

    /// `RedisUniqueQueue.put` for many payloads in one round trip: `ZADD
    /// NX`, scored by now, so a payload already queued keeps its place.
    /// Each payload scores a microsecond after the one before, so the
    /// queue keeps their order, as LibreNMS's one put after another does.
    pub async fn enqueue(&self, key: &str, payloads: &[String]) -> Result<(), RedisDown> {
        if payloads.is_empty() {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.run(async |c| {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(key).arg("NX");
            for (i, p) in payloads.iter().enumerate() {
                cmd.arg(now + i as f64 * 1e-6).arg(p);
            }
            let _: i64 = cmd.query_async(c).await?;
            Ok(())
        })
        .await
    }

    /// `ZCOUNT key -inf +inf`.
    pub async fn queue_len(&self, key: &str) -> Result<u64, RedisDown> {
        self.run(async |c| {
            redis::cmd("ZCOUNT")
                .arg(key)
                .arg("-inf")
                .arg("+inf")
                .query_async(c)
                .await
        })
        .await
    }

    /// What LibreNMS does when it opens a queue: a key of another type
    /// (an older implementation's) is deleted.
    pub async fn ensure_queue(&self, key: &str) -> Result<(), RedisDown> {
        self.run(async |c| {
            let kind: String = redis::cmd("TYPE").arg(key).query_async(c).await?;
            if kind != "zset" && kind != "none" {
                let _: i64 = redis::cmd("DEL").arg(key).query_async(c).await?;
            }
            Ok(())
        })
        .await
    }

    /// `BZPOPMIN key timeout` on a blocking connection: the oldest payload,
    /// or None after `timeout`.
    pub async fn pop(
        conn: &mut MultiplexedConnection,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<String>, RedisError> {
        let got: Option<(String, String, f64)> = redis::cmd("BZPOPMIN")
            .arg(key)
            .arg(timeout.as_secs_f64())
            .query_async(conn)
            .await?;
        Ok(got.map(|(_, member, _)| member))
    }
}

/// rustls needs one crypto provider per process; ring is the one built
/// in (aws-lc would need cmake to build; post-quantum key exchange, which
/// ring lacks, is not what a Redis link on the operator's network needs).
/// Installing twice is harmless.
#[allow(deprecated)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
