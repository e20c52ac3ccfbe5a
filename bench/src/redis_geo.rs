//! The Redis side of the geo comparison: points in one sorted set under a unique key, loaded with
//! pipelined `GEOADD` and queried with `GEOSEARCH ... BYRADIUS 10 km ASC COUNT 20 WITHDIST`.

use crate::{Nearest, LIMIT, RADIUS_M};
use anyhow::Context;
use geo_index::LatLng;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::time::Duration;

/// Points per `GEOADD` command.
const POINTS_PER_COMMAND: usize = 1_000;

/// A connection and the key holding this run's points.
pub struct RedisGeo {
    conn: MultiplexedConnection,
    key: String,
}

impl RedisGeo {
    /// Connects to `url`; the points will live under `key`, which should not exist yet.
    pub async fn connect(url: &str, key: String) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("Redis URL {url}"))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(120));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .context("EXISTS")?;
        anyhow::ensure!(!exists, "Redis key {key} already exists");
        Ok(Self { conn, key })
    }

    /// The key holding the points.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Adds `points` (member = id) in pipelines of `per_round_trip` points.
    pub async fn load(
        &mut self,
        points: &[(i64, LatLng)],
        per_round_trip: usize,
    ) -> anyhow::Result<()> {
        for round in points.chunks(per_round_trip.max(1)) {
            let mut pipe = redis::pipe();
            for command in round.chunks(POINTS_PER_COMMAND) {
                let mut geoadd = redis::cmd("GEOADD");
                geoadd.arg(&self.key);
                for &(id, at) in command {
                    geoadd.arg(at.lng()).arg(at.lat()).arg(id);
                }
                pipe.add_command(geoadd).ignore();
            }
            pipe.exec_async(&mut self.conn)
                .await
                .with_context(|| format!("GEOADD into {}", self.key))?;
        }
        Ok(())
    }

    /// Number of members under the key.
    pub async fn len(&mut self) -> anyhow::Result<usize> {
        redis::cmd("ZCARD")
            .arg(&self.key)
            .query_async(&mut self.conn)
            .await
            .context("ZCARD")
    }

    /// Deletes the key.
    pub async fn cleanup(&mut self) -> anyhow::Result<()> {
        redis::cmd("DEL")
            .arg(&self.key)
            .exec_async(&mut self.conn)
            .await
            .with_context(|| format!("DEL {}", self.key))
    }
}

impl Nearest for RedisGeo {
    /// `GEOSEARCH key FROMLONLAT lng lat BYRADIUS 10 km ASC COUNT 20 WITHDIST`; distances come
    /// back in km (4 decimals) and are returned in metres.
    async fn nearest(&mut self, at: LatLng) -> anyhow::Result<Vec<(i64, f64)>> {
        let hits: Vec<(i64, f64)> = redis::cmd("GEOSEARCH")
            .arg(&self.key)
            .arg("FROMLONLAT")
            .arg(at.lng())
            .arg(at.lat())
            .arg("BYRADIUS")
            .arg(RADIUS_M / 1000.0)
            .arg("km")
            .arg("ASC")
            .arg("COUNT")
            .arg(LIMIT)
            .arg("WITHDIST")
            .query_async(&mut self.conn)
            .await
            .context("GEOSEARCH")?;
        Ok(hits.into_iter().map(|(id, km)| (id, km * 1000.0)).collect())
    }
}
