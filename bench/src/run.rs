//! One run of the benchmark: every part `--workloads` asks for, on the deployments it needs,
//! each cell's figures kept as they are measured, then the report (and `--json`).

mod measure;
mod python;
mod report;
mod results;
mod subject;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use agent_memory::{
    Isolation, Memory, Message, Policy, Settings, Store, StoreSpec, store::RedisOptions,
};
use anyhow::{Context as _, bail};

use agent_memory_cli::interrupt::{Stop, Stops};
use agent_memory_tests::{RedisCluster, RedisServer, children};

use self::measure::Timing;
use self::python::{Implementation, Python};
use self::report::{machine, report, today};
use self::results::{CLUSTER, EMBEDDED, Results, SINGLE};
use self::subject::{Operation, Subject};
use super::args::BenchArgs;

/// Masters of the benchmark's own cluster.
const CLUSTER_MASTERS: usize = 3;

/// What `--workloads` can ask for: the Redis workloads, measured for every subject at every
/// concurrency, and the two parts measured on their own.
#[derive(Debug, Default)]
struct Workloads {
    /// add, get, turn: ours, native and Python on Redis.
    redis: Vec<Operation>,
    /// `embedded`: ours on the embedded store file.
    embedded: bool,
    /// `policy`: the policy alone over the in-memory store.
    policy: bool,
}

/// The names `--workloads` accepts, as its errors list them.
const WORKLOAD_NAMES: &str = "add, get, turn, embedded, policy";

/// Run the benchmark: "ours" runs `--policy` with `--policy-setting`s.
///
/// SIGINT or SIGTERM stops it within a moment: the cell in progress is abandoned, what was
/// measured is printed (and written to `--json`, marked incomplete), every server it started
/// is stopped, and it exits with the signal's status.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let stops = Stops::listen()?;
    // A signal while a server starts or a cluster settles (this thread is busy with it): the
    // fixture gives up at its next look instead of finishing first.
    let abandon = stops.clone();
    tokio::spawn(async move {
        abandon.wait().await;
        children::abandon_starts();
    });
    let workloads = parse_workloads(&args.workloads)?;
    let policy = agent_memory_cli::load_policy(&args.policy)?;
    let prometheus = match args.metrics.as_str() {
        "on" => Some(agent_memory_tests::prometheus::install_recorder()?),
        _ => None,
    };
    let settings = Settings {
        extra: args.policy_settings.clone(),
        ..Settings::default()
    };
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.seconds),
    };
    let text = "x".repeat(args.message_bytes.saturating_sub(40).max(1));
    let mut results = Results {
        machine: machine(),
        date: today(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        message_bytes: args.message_bytes,
        seconds_per_cell: args.seconds,
        policy: format!("{} {}", policy.origin(), policy.short_digest()),
        metrics: prometheus.is_some(),
        complete: true,
        ..Results::default()
    };
    // Servers are started on this (the main) thread and owned by this frame: whatever ends
    // the run (its end, an error, a signal), they are stopped when it returns (the fixtures'
    // `children` module says what stops them when the process itself is killed).
    let mut servers = Started::default();
    let measured = {
        let everything = measure_everything(
            &args,
            &workloads,
            (&policy, &settings),
            (timing, &text),
            &stops,
            &mut servers,
            &mut results,
        );
        tokio::select! {
            outcome = everything => outcome.map(|()| None),
            stop = stops.wait() => Ok(Some(stop)),
        }
    };
    let stopped_by = match measured {
        Ok(stop) => stop,
        Err(error) => match error.downcast_ref::<Interrupted>() {
            Some(Interrupted(stop)) => Some(*stop),
            None => return Err(error),
        },
    };
    drop(servers);
    let started = children::announced();
    if let Some(stop) = stopped_by {
        results.complete = false;
        results.interrupted_by = Some(stop.to_string());
    }

    results.metrics_samples = prometheus.map(|handle| {
        handle
            .render()
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .count()
    });
    print!("{}", report(&results));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(stop) = stopped_by {
        eprintln!(
            "bench: stopped by {stop} after {} measurements (a subject at a workload and \
             concurrency each); {}",
            results.rows.len(),
            match started {
                0 => "it had started no server".to_string(),
                1 => "the server it started is stopped".to_string(),
                count => format!("the {count} servers it started are stopped"),
            }
        );
        return Ok(ExitCode::from(stop.exit_code()));
    }
    let failures: u64 = results.rows.iter().map(|row| row.measured.failures).sum();
    if failures > 0 {
        bail!("{failures} operations failed during the benchmark: the figures are not comparable");
    }
    Ok(ExitCode::SUCCESS)
}

/// The servers the benchmark started for itself: held, not read, so that they are stopped
/// when this is dropped, whatever ends the run.
#[derive(Default)]
struct Started {
    _single: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

/// A signal arrived while the benchmark was doing something synchronous (starting servers).
#[derive(Debug, thiserror::Error)]
#[error("stopped by {0}")]
struct Interrupted(Stop);

/// Every part `workloads` asks for, each row pushed to `results` as it is measured (so that
/// what was measured survives this future being dropped), every server started kept in
/// `servers` (so that the caller stops them).
async fn measure_everything(
    args: &BenchArgs,
    workloads: &Workloads,
    (policy, settings): (&Policy, &Settings),
    (timing, text): (Timing, &str),
    stops: &Stops,
    servers: &mut Started,
    results: &mut Results,
) -> anyhow::Result<()> {
    // Starting servers is synchronous (on this thread: see `run`). A signal meanwhile makes
    // the fixture give up at its next look (`abandon_starts`), and is reported as the stop it
    // is, before whatever error the abandoned start returned.
    let stopped = || match stops.received() {
        Some(stop) => Err(anyhow::Error::new(Interrupted(stop))),
        None => Ok(()),
    };
    if !workloads.redis.is_empty() {
        let url = match &args.redis {
            Some(url) => url.clone(),
            None => {
                let started = RedisServer::try_start_with(&[]);
                stopped()?;
                let server = started?;
                let url = server.url();
                servers._single = Some(server);
                url
            }
        };
        let mut deployments = vec![(SINGLE, url)];
        if args.cluster {
            let started = RedisCluster::try_start_for_load(CLUSTER_MASTERS);
            stopped()?;
            let cluster = started?;
            deployments.push((CLUSTER, cluster.url()));
            servers._cluster = Some(cluster);
        }
        let python = if args.no_python {
            None
        } else {
            Some(Python::new(&args.python)?)
        };
        let run = Run {
            args,
            operations: &workloads.redis,
            python: python.as_ref(),
            timing,
            text,
        };
        let cells = deployments.len() * workloads.redis.len() * args.concurrency.len();
        let mut done = 0;
        for (index, (deployment, url)) in deployments.iter().enumerate() {
            let ours = Subject::Ours(
                Memory::builder()
                    .store(StoreSpec::parse(url)?)
                    .redis_options(RedisOptions::default())
                    .policy(policy.clone())
                    .settings(settings.clone())
                    .build()?,
            );
            // Strict isolation (a fresh instance per call) is measured on the single server,
            // side by side with the warm default.
            let strict = if index == 0 {
                Some(Subject::Ours(
                    Memory::builder()
                        .store(StoreSpec::parse(url)?)
                        .redis_options(RedisOptions::default())
                        .policy(policy.clone())
                        .settings(settings.clone())
                        .isolation(Isolation::Strict)
                        .build()?,
                ))
            } else {
                None
            };
            let native = native_subject(url)
                .await
                .context("connecting the native baseline")?;
            // Peak memory is measured once, on the first deployment.
            let measure_peak = index == 0;
            run.deployment(
                results,
                deployment,
                url,
                (&ours, strict.as_ref(), &native),
                measure_peak,
                (&mut done, cells),
            )
            .await?;
        }
    }
    if workloads.embedded {
        eprintln!("embedded store…");
        let dir = tempfile::tempdir()?;
        let embedded = Subject::Ours(
            Memory::builder()
                .store_handle(Store::open(
                    &StoreSpec::Embedded(dir.path().join("bench.redb")),
                    RedisOptions::default(),
                )?)
                .policy(policy.clone())
                .settings(settings.clone())
                .build()?,
        );
        for operation in [Operation::Add, Operation::Get] {
            for concurrency in [1, 16] {
                let label = format!("bench-embedded-{}-{concurrency}", operation.name());
                let measured =
                    measure::cell(&embedded, operation, concurrency, timing, &label, text).await;
                results.push(EMBEDDED, operation, concurrency, "ours-embedded", measured);
            }
        }
    }
    if workloads.policy {
        eprintln!("policy alone…");
        results.policy_alone_us = policy_alone(text, policy, settings).await?;
    }
    Ok(())
}

/// What every deployment's cells share.
struct Run<'a> {
    args: &'a BenchArgs,
    operations: &'a [Operation],
    python: Option<&'a Python>,
    timing: Timing,
    text: &'a str,
}

impl Run<'_> {
    /// Every cell on one deployment: ours, native and Python at each workload and concurrency.
    async fn deployment(
        &self,
        results: &mut Results,
        deployment: &'static str,
        url: &str,
        (ours, strict, native): (&Subject, Option<&Subject>, &Subject),
        measure_peak: bool,
        (done, cells): (&mut usize, usize),
    ) -> anyhow::Result<()> {
        let (args, timing, text) = (self.args, self.timing, self.text);
        let top = args.concurrency.iter().copied().max().unwrap_or(1);
        let short = if deployment == CLUSTER {
            "cluster"
        } else {
            "one"
        };
        for &operation in self.operations {
            for &concurrency in &args.concurrency {
                *done += 1;
                let label =
                    |who: &str| format!("bench-{short}-{who}-{}-{concurrency}", operation.name());
                eprintln!(
                    "[{done}/{cells}] {deployment}: {} at {concurrency} concurrent sessions…",
                    operation.name()
                );
                let ours_label = label("ours");
                let measure_ours =
                    measure::cell(ours, operation, concurrency, timing, &ours_label, text);
                let measured = if measure_peak && concurrency == top {
                    let (measured, peak) = measure::peak_resident_during(measure_ours).await;
                    results.peak_rss_bytes = results.peak_rss_bytes.max(peak);
                    measured
                } else {
                    measure_ours.await
                };
                results.push(deployment, operation, concurrency, "ours", measured);
                if operation == Operation::Turn {
                    let cell = (deployment, Operation::TurnCombined, concurrency);
                    let who = label("ours-combined");
                    self.measure_into(results, cell, ours, "ours", &who).await;
                }
                let cell = (deployment, operation, concurrency);
                if let Some(strict) = strict {
                    let who = label("ours-strict");
                    self.measure_into(results, cell, strict, "ours-strict", &who)
                        .await;
                }
                self.measure_into(results, cell, native, "native", &label("native"))
                    .await;
                if let Some(python) = self.python {
                    // LangChain's history takes a plain Redis URL only.
                    let implementations = if args.langchain && deployment == SINGLE {
                        &[Implementation::Original, Implementation::LangChain][..]
                    } else {
                        &[Implementation::Original][..]
                    };
                    for &implementation in implementations {
                        let cell = python
                            .cell(
                                implementation,
                                url,
                                operation,
                                concurrency,
                                timing,
                                args.message_bytes,
                            )
                            .await?;
                        let name = match implementation {
                            Implementation::Original => "python",
                            Implementation::LangChain => "langchain",
                        };
                        match cell {
                            Some(measured) => {
                                results.push(deployment, operation, concurrency, name, measured);
                            }
                            None => eprintln!("  {name}: not installed, skipped"),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Measure `subject` at one cell (deployment, operation, concurrency) and record it as
    /// `name`; `label` names its sessions.
    async fn measure_into(
        &self,
        results: &mut Results,
        (deployment, operation, concurrency): (&'static str, Operation, usize),
        subject: &Subject,
        name: &'static str,
        label: &str,
    ) {
        let measured = measure::cell(
            subject,
            operation,
            concurrency,
            self.timing,
            label,
            self.text,
        )
        .await;
        results.push(deployment, operation, concurrency, name, measured);
    }
}

/// The native baseline for `url`: one multiplexed connection, or redis-rs's cluster client.
async fn native_subject(url: &str) -> anyhow::Result<Subject> {
    if let Some(hosts) = url.strip_prefix("redis+cluster://") {
        let nodes: Vec<String> = hosts
            .trim_end_matches('/')
            .split(',')
            .map(|host| format!("redis://{host}"))
            .collect();
        // Bounded: redis-rs's cluster connect can hang (redis-rs #1953).
        let client = redis::cluster::ClusterClient::new(nodes)?;
        let connection =
            tokio::time::timeout(Duration::from_secs(10), client.get_async_connection())
                .await
                .context("redis-rs's cluster client did not connect within 10 s")??;
        return Ok(Subject::NativeCluster(connection));
    }
    Ok(Subject::Native(
        redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?,
    ))
}

fn parse_workloads(names: &[String]) -> anyhow::Result<Workloads> {
    let mut workloads = Workloads::default();
    for name in names {
        match name.trim() {
            "add" => workloads.redis.push(Operation::Add),
            "get" => workloads.redis.push(Operation::Get),
            "turn" => workloads.redis.push(Operation::Turn),
            "embedded" => workloads.embedded = true,
            "policy" => workloads.policy = true,
            other => bail!("unknown workload {other:?}: use {WORKLOAD_NAMES}"),
        }
    }
    workloads.redis.dedup();
    Ok(workloads)
}

/// The policy alone over the in-memory store, on warm instances and in strict isolation:
/// microseconds per add of one message and per read of a full window, the best of three rounds
/// of 2000 calls.
async fn policy_alone(
    text: &str,
    policy: &Policy,
    settings: &Settings,
) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let mut timings = Vec::new();
    for (isolation, add_name, get_name) in [
        (Isolation::Warm, "add", "get"),
        (Isolation::Strict, "add (strict)", "get (strict)"),
    ] {
        let memory = Memory::builder()
            .store(StoreSpec::InMemory)
            .policy(policy.clone())
            .settings(settings.clone())
            .isolation(isolation)
            .build()?;
        let message = Message::user(text);
        for _ in 0..50 {
            let _ = memory.add_message("alone", message.clone()).await?;
        }
        const CALLS: u32 = 2000;
        let (mut add, mut get) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            let started = Instant::now();
            for _ in 0..CALLS {
                let _ = memory.add_message("alone", message.clone()).await?;
            }
            add = add.min(started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
            let started = Instant::now();
            for _ in 0..CALLS {
                memory.get_context("alone").await?;
            }
            get = get.min(started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
        }
        timings.push((add_name, add));
        timings.push((get_name, get));
    }
    Ok(timings)
}
