//! The `ironpoll` binary: parse the command line, set up logging, run.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;
ironpoll::tune_allocator_at_load!();

fn main() -> std::process::ExitCode {
    ironpoll::cli::main()
}
