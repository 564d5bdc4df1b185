//! The `ringnfs-bench` executable: the load generator (`crates/bench`). `ringnfs bench
//! ARGS...` execs it from the directory of `ringnfs`; it runs on its own as well.

fn main() -> std::process::ExitCode {
    ringnfs_bench::main()
}
