//! The PostgreSQL side of the geo comparison: one schema per run (dropped at the end) holding a
//! table per engine, loaded with batched `INSERT ... SELECT FROM UNNEST` and queried by a GiST
//! nearest-neighbour index scan.
//!
//! Two engines: PostGIS (`geography(Point, 4326)`, `ORDER BY geog <-> q LIMIT 20` for the
//! nearest, `ST_DWithin` for the radius) when the server has it, else the contrib `cube` +
//! `earthdistance` (`ll_to_earth` points, `ORDER BY e <-> q LIMIT 20`, the chord, which orders
//! like `earth_distance` but is what the GiST index can return in order; `earth_box(...) @> e`
//! and `earth_distance(...) <= r` for the radius). An extension the database lacks is created in the run's schema, so it
//! goes when the schema does.

use crate::{Nearest, LIMIT, RADIUS_M};
use anyhow::Context;
use geo_index::LatLng;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use std::time::{Duration, Instant};

/// A nearest-neighbour engine inside PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostGIS `geography`.
    PostGis,
    /// Contrib `cube` + `earthdistance`.
    EarthDistance,
}

impl Engine {
    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::PostGis => "PostGIS",
            Engine::EarthDistance => "earthdistance",
        }
    }

    /// The extensions it needs, in creation order.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Engine::PostGis => &["postgis"],
            Engine::EarthDistance => &["cube", "earthdistance"],
        }
    }

    fn table(self) -> &'static str {
        match self {
            Engine::PostGis => "geo_postgis",
            Engine::EarthDistance => "geo_earth",
        }
    }

    fn create_table(self) -> String {
        let column = match self {
            Engine::PostGis => "geog geography(Point, 4326) NOT NULL",
            Engine::EarthDistance => "e earth NOT NULL",
        };
        // UNLOGGED: only the load skips the WAL; queries read the same heap and index.
        format!(
            "CREATE UNLOGGED TABLE {} (id bigint NOT NULL, {column})",
            self.table()
        )
    }

    fn insert(self) -> String {
        let value = match self {
            Engine::PostGis => "ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography",
            Engine::EarthDistance => "ll_to_earth(lat, lng)",
        };
        format!(
            "INSERT INTO {} SELECT id, {value} \
             FROM UNNEST($1::int8[], $2::float8[], $3::float8[]) AS t(id, lat, lng)",
            self.table()
        )
    }

    fn create_index(self) -> String {
        let column = match self {
            Engine::PostGis => "geog",
            Engine::EarthDistance => "e",
        };
        format!(
            "CREATE INDEX {0}_gist ON {0} USING GIST ({column})",
            self.table()
        )
    }

    /// The query, with `$1` latitude and `$2` longitude: the `LIMIT` nearest by a GiST KNN index
    /// scan (`ORDER BY ... <-> q LIMIT`), then the radius test on those. Radius and limit are
    /// literals so that a generic cached plan still knows them.
    ///
    /// Not `WHERE <radius test> ORDER BY ... <-> q LIMIT`: with the radius test in the same
    /// query, the planner's row estimate for it makes it switch, for some query points, to a
    /// bitmap scan of the whole 10 km disc and a top-N sort (tens to hundreds of milliseconds in
    /// dense places). Both forms give the same answer: when the nearest `LIMIT` include a point
    /// beyond the radius, every point within it is among them.
    pub fn query(self) -> String {
        let (r, limit, table) = (RADIUS_M, LIMIT, self.table());
        match self {
            Engine::PostGis => format!(
                "SELECT id, d FROM ( \
                   SELECT id, geog, geog <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS d \
                   FROM {table} \
                   ORDER BY geog <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography \
                   LIMIT {limit} \
                 ) nearest \
                 WHERE ST_DWithin(geog, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, {r:.1}) \
                 ORDER BY d, id"
            ),
            Engine::EarthDistance => format!(
                "SELECT id, d FROM ( \
                   SELECT id, e, earth_distance(e, ll_to_earth($1, $2)) AS d \
                   FROM {table} \
                   ORDER BY e <-> ll_to_earth($1, $2) \
                   LIMIT {limit} \
                 ) nearest \
                 WHERE earth_box(ll_to_earth($1, $2), {r:.1}) @> e AND d <= {r:.1} \
                 ORDER BY d, id"
            ),
        }
    }
}

/// Time spent loading one engine's table.
#[derive(Debug, Clone, Copy)]
pub struct LoadTimes {
    /// Batched inserts.
    pub insert: Duration,
    /// `CREATE INDEX ... USING GIST` and `ANALYZE`.
    pub index: Duration,
}

/// Server-side times of one query from `EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)`.
#[derive(Debug, Clone)]
pub struct ServerTime {
    /// "Planning Time".
    pub planning: Duration,
    /// "Execution Time".
    pub execution: Duration,
    /// The whole EXPLAIN output.
    pub explain: String,
}

/// One connection working in this run's schema.
pub struct PgSession {
    conn: PgConnection,
    schema: String,
    extension_schemas: Vec<String>,
}

impl PgSession {
    /// Connects to `url` and creates `schema` (which must not exist) to work in. Unless `jit`,
    /// turns JIT compilation off for the session: the planner's cost estimate for the PostGIS
    /// query is far above `jit_above_cost`, and compiling costs tens of milliseconds per query.
    pub async fn open(url: &str, schema: &str, jit: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(
            schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "schema name {schema:?} must be lowercase letters, digits and _"
        );
        let mut conn = PgConnection::connect(url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {url}"))?;
        if !jit {
            sqlx::raw_sql("SET jit = off")
                .execute(&mut conn)
                .await
                .context("SET jit = off")?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE SCHEMA {schema}"))?;
        let mut session = Self {
            conn,
            schema: schema.to_owned(),
            extension_schemas: Vec::new(),
        };
        session.set_search_path().await?;
        Ok(session)
    }

    async fn set_search_path(&mut self) -> anyhow::Result<()> {
        let mut path = vec![self.schema.clone()];
        for s in &self.extension_schemas {
            if !path.contains(s) {
                path.push(s.clone());
            }
        }
        path.push("public".to_owned());
        let quoted: Vec<String> = path.iter().map(|s| format!("\"{s}\"")).collect();
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*format!(
            "SET search_path TO {}",
            quoted.join(", ")
        )))
        .execute(&mut self.conn)
        .await
        .context("SET search_path")?;
        Ok(())
    }

    /// The server's version string.
    pub async fn server_version(&mut self) -> anyhow::Result<String> {
        let row = sqlx::query("SELECT version()")
            .fetch_one(&mut self.conn)
            .await
            .context("SELECT version()")?;
        Ok(row.try_get(0)?)
    }

    /// Whether the server can provide every extension `engine` needs.
    pub async fn available(&mut self, engine: Engine) -> anyhow::Result<bool> {
        for ext in engine.extensions() {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT name::text FROM pg_available_extensions WHERE name = $1",
            )
            .bind(*ext)
            .fetch_optional(&mut self.conn)
            .await
            .context("reading pg_available_extensions")?;
            if found.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Makes `engine`'s extensions usable (creating the missing ones in this run's schema, once
    /// the server is known to have them) and creates its empty table. Returns the extensions'
    /// versions, for the report.
    pub async fn prepare(&mut self, engine: Engine) -> anyhow::Result<String> {
        let mut versions = Vec::new();
        for ext in engine.extensions() {
            let installed: Option<(String, String)> = sqlx::query_as(
                "SELECT n.nspname::text, e.extversion::text FROM pg_extension e \
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1",
            )
            .bind(*ext)
            .fetch_optional(&mut self.conn)
            .await
            .context("reading pg_extension")?;
            let (schema, version) = match installed {
                Some(found) => found,
                None => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(&*format!(
                        "CREATE EXTENSION IF NOT EXISTS {ext} SCHEMA {}",
                        self.schema
                    )))
                    .execute(&mut self.conn)
                    .await
                    .with_context(|| format!("CREATE EXTENSION {ext}"))?;
                    let version: String = sqlx::query_scalar(
                        "SELECT extversion::text FROM pg_extension WHERE extname = $1",
                    )
                    .bind(*ext)
                    .fetch_one(&mut self.conn)
                    .await
                    .context("reading pg_extension")?;
                    (self.schema.clone(), version)
                }
            };
            versions.push(format!("{ext} {version} (schema {schema})"));
            if !self.extension_schemas.contains(&schema) {
                self.extension_schemas.push(schema);
            }
        }
        self.set_search_path().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*engine.create_table()))
            .execute(&mut self.conn)
            .await
            .with_context(|| format!("creating the {} table", engine.name()))?;
        Ok(versions.join(", "))
    }

    /// Inserts `points` in batches of `batch`, then builds the GiST index and analyzes.
    pub async fn load(
        &mut self,
        engine: Engine,
        points: &[(i64, LatLng)],
        batch: usize,
    ) -> anyhow::Result<LoadTimes> {
        let sql = engine.insert();
        let start = Instant::now();
        for chunk in points.chunks(batch.max(1)) {
            let ids: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let lats: Vec<f64> = chunk.iter().map(|p| p.1.lat()).collect();
            let lngs: Vec<f64> = chunk.iter().map(|p| p.1.lng()).collect();
            sqlx::query(sqlx::AssertSqlSafe(&*sql))
                .bind(ids)
                .bind(lats)
                .bind(lngs)
                .execute(&mut self.conn)
                .await
                .with_context(|| format!("inserting into the {} table", engine.name()))?;
        }
        let insert = start.elapsed();
        let start = Instant::now();
        sqlx::raw_sql("SET maintenance_work_mem = '512MB'")
            .execute(&mut self.conn)
            .await
            .context("SET maintenance_work_mem")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*engine.create_index()))
            .execute(&mut self.conn)
            .await
            .with_context(|| format!("indexing the {} table", engine.name()))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*format!("ANALYZE {}", engine.table())))
            .execute(&mut self.conn)
            .await
            .context("ANALYZE")?;
        Ok(LoadTimes {
            insert,
            index: start.elapsed(),
        })
    }

    /// `earth()`, the sphere radius `earthdistance` measures on, in metres.
    pub async fn earth_radius_m(&mut self) -> anyhow::Result<f64> {
        sqlx::query_scalar("SELECT earth()")
            .fetch_one(&mut self.conn)
            .await
            .context("SELECT earth()")
    }

    /// The plan the server picks for the query at `at`, as text.
    pub async fn plan(&mut self, engine: Engine, at: LatLng) -> anyhow::Result<String> {
        let lines = self.explain_lines("EXPLAIN", engine, at).await?;
        Ok(lines.join("\n"))
    }

    /// Planning and execution time of the query at `at`, measured by the server.
    pub async fn server_time(&mut self, engine: Engine, at: LatLng) -> anyhow::Result<ServerTime> {
        let lines = self
            .explain_lines("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)", engine, at)
            .await?;
        let field = |name: &str| -> anyhow::Result<Duration> {
            let line = lines
                .iter()
                .find_map(|l| l.trim().strip_prefix(name))
                .with_context(|| format!("no {name:?} in the EXPLAIN output"))?;
            let ms: f64 = line
                .trim()
                .trim_end_matches("ms")
                .trim()
                .parse()
                .with_context(|| format!("parsing {name:?} from {line:?}"))?;
            Ok(Duration::from_secs_f64(ms / 1000.0))
        };
        Ok(ServerTime {
            planning: field("Planning Time:")?,
            execution: field("Execution Time:")?,
            explain: lines.join("\n"),
        })
    }

    async fn explain_lines(
        &mut self,
        explain: &str,
        engine: Engine,
        at: LatLng,
    ) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(&*format!(
            "{explain} {}",
            engine.query()
        )))
        .bind(at.lat())
        .bind(at.lng())
        .fetch_all(&mut self.conn)
        .await
        .with_context(|| format!("{explain} of the {} query", engine.name()))
    }

    /// The engine's query at `at` through this session: `(id, distance_m)`, nearest first.
    pub async fn nearest(&mut self, engine: Engine, at: LatLng) -> anyhow::Result<Vec<(i64, f64)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(&*engine.query()))
            .bind(at.lat())
            .bind(at.lng())
            .fetch_all(&mut self.conn)
            .await
            .with_context(|| format!("the {} query", engine.name()))?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Drops this run's schema (its tables, and any extension created in it) and disconnects.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(&*format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.schema
        )))
        .execute(&mut self.conn)
        .await
        .with_context(|| format!("DROP SCHEMA {}", self.schema))?;
        self.conn.close().await.context("closing the connection")?;
        Ok(())
    }

    /// A [`Nearest`] view of this session for `engine`.
    pub fn engine(&mut self, engine: Engine) -> PgNearest<'_> {
        PgNearest {
            session: self,
            engine,
        }
    }
}

/// A [`PgSession`] answering one engine's queries.
pub struct PgNearest<'a> {
    session: &'a mut PgSession,
    engine: Engine,
}

impl Nearest for PgNearest<'_> {
    async fn nearest(&mut self, at: LatLng) -> anyhow::Result<Vec<(i64, f64)>> {
        self.session.nearest(self.engine, at).await
    }
}
