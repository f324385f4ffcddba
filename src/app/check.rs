//! `siem-agent check`: the flags, then each config's (or tenant's)
//! checks, one line each.

use crate::cli::ExportArgs;
use crate::cli::settings::Settings;
use crate::exit_codes::ExitCode;

/// `siem-agent check`: one line per check, exit 0 only if all pass.
pub async fn check(args: ExportArgs) -> ExitCode {
    if args.demo {
        println!(
            "FAIL flags: --demo runs an export against a built-in simulator; it has nothing to check (run siem-agent --demo)"
        );
        return ExitCode::Error;
    }
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL flags: {e}");
            return ExitCode::Error;
        }
    };
    println!("PASS flags: {} destination(s)", settings.destinations.len());
    let Some(dir) = &settings.tenants_dir else {
        let checks = crate::commands::check::run(&settings, |c| println!("{c}")).await;
        return if checks.iter().all(|c| c.result.is_ok()) {
            ExitCode::Success
        } else {
            ExitCode::Error
        };
    };
    // --config DIR: every tenant's checks, each line naming its tenant.
    let found = match crate::tenant::discover(dir, &settings.state_dir) {
        Ok(f) => f,
        Err(e) => {
            println!("FAIL tenants: {e}");
            return ExitCode::Error;
        }
    };
    println!("PASS tenants: {} in {}", found.len(), dir.display());
    let mut all_passed = true;
    for tenant in found {
        match tenant {
            Ok(t) => {
                let checks = crate::commands::check::run(&settings.for_tenant(&t), |c| {
                    println!("tenant {}: {c}", t.name);
                })
                .await;
                all_passed &= checks.iter().all(|c| c.result.is_ok());
            }
            Err(e) => {
                println!("FAIL tenant: {e}");
                all_passed = false;
            }
        }
    }
    if all_passed {
        ExitCode::Success
    } else {
        ExitCode::Error
    }
}
