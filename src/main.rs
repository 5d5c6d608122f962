//! The `ironpoll` binary: parse the command line, set up logging, run.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    ironpoll::cli::main()
}
