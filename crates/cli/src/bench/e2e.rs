//! `pubsub bench e2e`: producers and consumers in one process. Each value
//! carries when its batch was due (nanoseconds since the run's epoch);
//! consumers, positioned at the end of every partition before the first
//! message is sent, record the delay from that instant to the fetch
//! answer that brought the message. Producers keep their open-loop pacing
//! (`--rate`), so a stall shows in the percentiles.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pubsub_client::admin;
use tokio::sync::Barrier;

use super::consume::{run_consumers, Goal, Start};
use super::produce::{produce, ProduceRun};
use super::report::Report;
use crate::error::CliError;

/// Most bytes per consumer fetch (librdkafka's default `fetch.max.bytes`).
const FETCH_MAX_BYTES: i32 = 50 << 20;
/// How long consumers may take to catch up once producers are done.
const DRAIN: Duration = Duration::from_secs(30);

/// Runs producers and consumers together; the consumers' report, with
/// end-to-end latency.
pub async fn e2e(mut run: ProduceRun, consumers: usize) -> Result<Report, CliError> {
    if consumers == 0 {
        return Err(CliError::Usage("--consumers must be at least 1".into()));
    }
    if run.size < 8 {
        return Err(CliError::Usage(
            "--size must be at least 8: each value carries its send time".into(),
        ));
    }
    let mut cluster = run.bootstrap.cluster().await?;
    let topic = admin::ensure_topic(&mut cluster, &run.topic, run.partitions).await?;
    // The target is known once the producers are done.
    let goal = Arc::new(Goal::new(u64::MAX, None));
    let ready = Arc::new(Barrier::new(consumers + 1));
    let bar = super::progress_bar(run.progress, run.duration.is_none().then_some(run.messages));
    let epoch = Instant::now();
    let consuming = {
        let (bootstrap, topic, goal, ready, bar) = (
            run.bootstrap.clone(),
            topic.clone(),
            goal.clone(),
            ready.clone(),
            bar.clone(),
        );
        tokio::spawn(async move {
            run_consumers(
                &bootstrap,
                &topic,
                consumers,
                Start::Latest,
                (FETCH_MAX_BYTES, pubsub_client::fetch::PARTITION_MAX_BYTES),
                Some(epoch),
                goal,
                Some(ready),
                bar,
            )
            .await
        })
    };
    // Every consumer holds its starting offsets before anything is sent.
    ready.wait().await;
    run.stamp_epoch = Some(epoch);
    run.progress = false;
    let start = Instant::now();
    let produced = produce(run).await;
    let produced = match produced {
        Ok(p) => p,
        Err(e) => {
            consuming.abort();
            return Err(e);
        }
    };
    goal.target.store(produced.messages, Ordering::Relaxed);
    let report = match tokio::time::timeout(DRAIN, consuming).await {
        Ok(joined) => joined.map_err(|e| CliError::Usage(format!("consumer task: {e}")))??,
        Err(_) => {
            return Err(CliError::Usage(format!(
                "only {} of {} acknowledged messages reached the consumers within {DRAIN:?} of the last send",
                goal.read.load(Ordering::Relaxed),
                produced.messages
            )))
        }
    };
    bar.finish_and_clear();
    Ok(Report {
        seconds: start.elapsed().as_secs_f64(),
        errors: produced.errors,
        first_error: produced.first_error,
        ..report
    })
}
