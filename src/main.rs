//! The `lloyd` command line: optimal quantizers of 1-D laws, K-means codebooks on `.npy`
//! files, encoding and decoding.

use std::process::ExitCode;

use clap::Parser;

#[path = "cli/args.rs"]
mod args;
#[path = "cli/codebooks.rs"]
mod codebooks;
#[path = "cli/one_d.rs"]
mod one_d;

use args::{Cli, Command, PqCommand, QuantizeArgs};
use codebooks::{decode, devices, encode, kmeans, pq_decode, pq_encode, pq_train};
use one_d::{quantize, quantize_nd};

fn main() -> ExitCode {
    // An interrupted write leaves no temporary file behind.
    let _ = ctrlc::set_handler(|| {
        lloyd::npy::remove_temporaries();
        std::process::exit(130);
    });
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, like every other error of this program; `--help` has the rest. The
            // first paragraph holds the message and what it names (missing flags say
            // which, on the lines after the first).
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = if first.is_empty() {
                "invalid arguments".to_string()
            } else {
                first.join(" ")
            };
            eprintln!("{line} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => quantize(&QuantizeArgs::parse_default()),
        Some(Command::Quantize(a)) => quantize(&a),
        Some(Command::QuantizeNd(a)) => quantize_nd(&a),
        Some(Command::Kmeans(a)) => kmeans(&a),
        Some(Command::Encode(a)) => encode(&a),
        Some(Command::Decode(a)) => decode(&a),
        Some(Command::Devices { json }) => devices(json),
        Some(Command::Pq(PqCommand::Train(a))) => pq_train(&a),
        Some(Command::Pq(PqCommand::Encode(a))) => pq_encode(&a),
        Some(Command::Pq(PqCommand::Decode(a))) => pq_decode(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
