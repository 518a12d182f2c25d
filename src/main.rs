#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    redress::cli::main()
}
