//! The `entrain` binary: see [`entrain::cli`].

fn main() -> std::process::ExitCode {
    entrain::cli::main()
}
