//! `pubsub log`: offline tools on a stopped broker's data directory.
//!
//! - `pubsub log dump PATH` prints the batches (and with `--records` the
//!   records) of a segment file, or of every segment of a partition
//!   directory, as text or as one JSON object per line. Validation is the
//!   storage engine's own scan ([`pubsub_storage::scan`]): at the first
//!   invalid batch the dump of that segment stops with a line saying where
//!   and why.
//! - `pubsub log check DIR` runs [`pubsub_storage::check`] on every
//!   partition of a data directory (or on one partition directory), adds
//!   what the broker itself would change at open (directories of deleted
//!   topics, missing partition directories, unreadable metadata), prints a
//!   verdict per partition and exits 1 if opening the broker would change
//!   anything. Nothing on disk is written: files are only opened for reading.
//!
//! The data directory layout is docs/FORMAT.md section 0.

mod check;
mod dump;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use pubsub_storage::LogConfig;

use crate::error::CliError;

/// Offline tools on a stopped broker's files.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the batches (and records) of a segment file or of every segment
    /// of a partition directory.
    #[command(
        after_help = "Examples:\n  pubsub log dump pubsub-data/orders-0/00000000000000000000.log\n  pubsub log dump pubsub-data/orders-0 --records\n  pubsub log dump pubsub-data/orders-0 --records --json | jq -c 'select(.type == \"record\")'\n\nRun it on a stopped broker's files. Keys, header values and values are shown as text when\nthey are valid UTF-8, else as hex (in JSON: a string, or {\"hex\": \"...\"}), cut to\n--max-value-bytes; JSON records carry key_size and value_size. Compressed batches are\ndecompressed for --records. JSON lines have a \"type\": segment, batch, record,\nrecord_error, invalid, end. At the first invalid batch (a torn write, a bad CRC) the dump\nof that segment stops with a line saying at which byte and why. The exit status is 0\nwhenever the files could be read, invalid data or not: `pubsub log check` tests health."
    )]
    Dump(DumpArgs),
    /// Validate every segment and index of a data directory or partition
    /// directory and report what recovery would do. Changes nothing.
    #[command(
        after_help = "Examples:\n  pubsub log check pubsub-data\n  pubsub log check pubsub-data/orders-0 --verbose\n  pubsub log check pubsub-data --json | jq '.partitions[] | select(.healthy | not)'\n\nEvery batch's CRC and offsets are validated and every index is compared with the one the\nlog would build; broker metadata (topic files, partition checkpoints) is read too. Nothing\non disk is written. Run it on a stopped broker: it warns when a broker holds the directory.\nExit status: 0 when opening the broker would change nothing, 1 when it would change or\nrefuse something (or a file could not be read)."
    )]
    Check(CheckArgs),
}

/// Arguments of `pubsub log dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// A segment file (`<base offset>.log`) or a partition directory (`<data>/<topic>-<n>`)
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Print every record too: offset, timestamp, key, headers, value
    #[arg(long)]
    records: bool,
    /// Show at most this many bytes of each key, header value and value
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    max_value_bytes: usize,
    /// One JSON object per line (NDJSON)
    #[arg(long)]
    json: bool,
}

/// Arguments of `pubsub log check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A data directory (`--data-dir` of `pubsub serve`) or one partition directory
    #[arg(value_name = "DIR")]
    path: PathBuf,
    /// Print the result as one JSON document
    #[arg(long)]
    json: bool,
    /// List every segment of every partition, not only of those with problems
    #[arg(long, short)]
    verbose: bool,
    /// index.interval.bytes the logs were written with [default: each topic's setting, else 4096]
    #[arg(long, value_name = "BYTES")]
    index_interval_bytes: Option<u64>,
}

/// Runs one `pubsub log` command.
pub fn run(cmd: LogCommand) -> Result<(), CliError> {
    match cmd {
        LogCommand::Dump(args) => dump::dump(&args),
        LogCommand::Check(args) => check::check(&args),
    }
}

/// Largest decompressed batch `dump --records` inflates (the storage default).
fn max_decompressed() -> usize {
    LogConfig::default().max_decompressed_bytes
}

fn io_error(what: String, source: io::Error) -> CliError {
    CliError::Io { what, source }
}

/// Stdout, buffered; a reader that went away (`| head`) ends the output
/// quietly, any other write error is returned at the end.
struct Out {
    out: io::BufWriter<io::Stdout>,
    closed: bool,
    error: Option<io::Error>,
}

impl Out {
    fn new() -> Self {
        Out {
            out: io::BufWriter::new(io::stdout()),
            closed: false,
            error: None,
        }
    }

    fn line(&mut self, text: &str) {
        if self.closed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{text}") {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> Result<(), CliError> {
        if !self.closed {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
        match self.error.take() {
            Some(e) => Err(io_error("writing to stdout".into(), e)),
            None => Ok(()),
        }
    }
}

/// The base offset a segment file name carries (`00000000000000000042.log`).
fn base_from_name(path: &Path) -> Option<u64> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".log")?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pubsub_broker::check::split_dir_name;

    #[test]
    fn segment_names_carry_base_offsets() {
        assert_eq!(
            base_from_name(Path::new("/d/t-0/00000000000000000042.log")),
            Some(42)
        );
        assert_eq!(base_from_name(Path::new("42.log")), None);
        assert_eq!(
            base_from_name(Path::new("00000000000000000042.log.deleted")),
            None
        );
        assert_eq!(split_dir_name("my-topic-12"), Some(("my-topic", 12)));
        assert_eq!(split_dir_name("topics"), None);
    }
}
