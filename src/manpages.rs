//! `ringnfs manpages DIR`: one man page per command (`ringnfs.1`, `ringnfs-serve.1`,
//! `ringnfs-ctl.1`, `ringnfs-ctl-settings.1`, ...), generated from the command line's
//! own definitions with `clap_mangen`, so they cannot drift from `--help`. The load
//! generator writes its own (`ringnfs-bench manpages DIR`). The Debian package installs
//! both (`packaging/build-deb.sh`).

use std::path::Path;

use anyhow::Context;

/// Write the pages of `cmd` and of every subcommand under it into `dir`.
pub fn write_all(cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = cmd;
    cmd.build();
    write_tree(&cmd, dir)
}

fn write_tree(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    // Hidden commands, clap's `help` subcommands, and `bench`, whose options are the
    // load generator's own: `ringnfs-bench manpages DIR` writes its pages.
    if cmd.is_hide_set() || matches!(cmd.get_name(), "help" | "bench") {
        return Ok(());
    }
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string();
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands() {
        write_tree(sub, dir)?;
    }
    Ok(())
}
