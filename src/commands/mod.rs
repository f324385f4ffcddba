//! The subcommands besides the export: `check`, `status`, `completions`,
//! `man` (the simulator lives in `simulate`).

pub mod check;
pub mod status;

use crate::cli::Cli;
use clap::CommandFactory;

/// Writes shell completions for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "siem-agent", out);
}

/// Writes the man page (roff) to `out`: clap_mangen's page, with
/// ENVIRONMENT (from the flags' `env`), FILES and EXAMPLES before its
/// VERSION section.
pub fn man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use std::fmt::Write as _;
    /// `text` as roff text: `\` and `-` escaped, no line read as a request.
    fn roff(text: &str) -> String {
        let s = text.replace('\\', "\\e").replace('-', "\\-");
        if s.starts_with(['.', '\'']) {
            format!("\\&{s}")
        } else {
            s
        }
    }
    const FILES_AND_EXAMPLES: &str = r#".SH FILES
.TP
\fI/etc/siem\-agent/config.json\fR
The credentials and the source (\fB\-\-config\fR; or a directory of tenant files, one per *.json). It holds a secret: keep it mode 600, or root:siem\-agent 640 for the package's service user: the agent warns when group or others can read it, but for its own group's read of a file another user owns. An example per source: \fI/usr/share/doc/siem\-agent/examples/\fR.
.TP
\fI/etc/siem\-agent/siem\-agent.env\fR
The service's SIEM_AGENT_CONFIG and SIEM_AGENT_ARGS (see ENVIRONMENT).
.TP
\fI/var/lib/siem\-agent/export_log.state\fR
The cursor of each stream (and \fI.export_log.state.prev\fR, its previous version); never edit it. In the state directory, \fB\-\-state\-dir\fR (default: the config file's directory; the service's and the cron line's is \fI/var/lib/siem\-agent\fR, mode 700 or 750).
.TP
\fI/var/lib/siem\-agent/export_log.lock\fR
Held for the whole run: a second run meanwhile exits 0 (1 once the lock is older than \fB\-\-stale\-after\fR).
.TP
\fI/var/lib/siem\-agent/last_job.status\fR
How the last run ended, with its counts (\fBsiem\-agent status\fR).
.TP
\fI/var/log/siem\-agent.log\fR
The agent's log (\fB\-\-log\-file\fR; rotated at 10 MB, 5 kept): \fIsiem\-agent.log\fR in the state directory when it cannot be written; \fI/var/log/siem\-agent/siem\-agent.log\fR under the service.
.SH EXAMPLES
Every 10 minutes from root's crontab, CEF over RELP, the state in /var/lib/siem\-agent:
.PP
.nf
.RS 4
*/10 * * * * /usr/bin/siem\-agent \-\-config /etc/siem\-agent/config.json \-\-state\-dir /var/lib/siem\-agent \-o REMOTE \-t relp://siem.example:2514
.RE
.fi
.PP
Try the config and every destination, then print five logs as they would be sent, without moving the cursor:
.PP
.nf
.RS 4
siem\-agent check \-\-config /etc/siem\-agent/config.json \-\-state\-dir /var/lib/siem\-agent \-o REMOTE \-t relp://siem.example:2514
siem\-agent \-\-config /etc/siem\-agent/config.json \-\-state\-dir /var/lib/siem\-agent \-\-dry\-run \-\-max\-events 5
.RE
.fi
.PP
Send everything again from 1 November (UTC), overriding the saved cursor (a backfill; the runs after it go on from where it ended):
.PP
.nf
.RS 4
siem\-agent \-\-config /etc/siem\-agent/config.json \-\-state\-dir /var/lib/siem\-agent \-\-start\-date 2026\-11\-01 \-o REMOTE \-t relp://siem.example:2514
.RE
.fi
"#;
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let mut page = String::from_utf8(page).map_err(std::io::Error::other)?;
    if !page.ends_with('\n') {
        page.push('\n');
    }
    // The options under the help heading "Files" (--config, --state-dir)
    // would make a second FILES section, the man page's own below.
    page = page.replace("\n.SH FILES\n", "\n.SH \"FILE OPTIONS\"\n");
    let mut extra = String::from(
        ".SH ENVIRONMENT\nEach stands for its option when the option is not given; a secret in one stays out of \\fBps\\fR(1).\n",
    );
    let mut seen: Vec<String> = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let env = env.to_string_lossy().into_owned();
        if seen.contains(&env) {
            continue;
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(
            extra,
            ".TP\n\\fB{}\\fR\n\\fB\\-\\-{}\\fR: {}",
            roff(&env),
            roff(long),
            roff(&help)
        );
        seen.push(env);
    }
    extra.push_str(
        ".TP\n\\fBSIEM_AGENT_CONFIG\\fR, \\fBSIEM_AGENT_ARGS\\fR\nRead by siem\\-agent.service (from \\fI/etc/siem\\-agent/siem\\-agent.env\\fR), not by the agent: the config, and the export's options, split into words as \\fBsh\\fR(1) splits them, so that a value with spaces is quoted: SIEM_AGENT_ARGS=\\-\\-app \"Yahoo Mail\" \\-\\-severity all.\n",
    );
    extra.push_str(FILES_AND_EXAMPLES);
    match page.find("\n.SH VERSION") {
        Some(i) => page.insert_str(i + 1, &extra),
        None => page.push_str(&extra),
    }
    out.write_all(page.as_bytes())
}
