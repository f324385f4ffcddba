//! Panics: one line on stderr, redacted, and exit 1; in a tenant's own
//! task, that tenant fails and the others go on.

use crate::secret::redact;

/// The tasks of tenants (`--config DIR`): a panic in one ends that tenant
/// only, rather than the process.
pub(super) static TENANT_TASKS: std::sync::Mutex<Vec<tokio::task::Id>> =
    std::sync::Mutex::new(Vec::new());

/// A panic message may quote data; it is redacted like every other line.
/// A panic anywhere (a worker thread included) ends the process with 1;
/// the cursor was committed only for pages already confirmed. With many
/// tenants, a panic in a tenant's own task ends that tenant only: it
/// fails with the message, the others go on (a panic anywhere else, a
/// task it started included, still ends the process).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = redact(&info.to_string()).replace('\n', " ");
        if let Some(id) = tokio::task::try_id()
            && TENANT_TASKS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&id)
        {
            // The tenant's task ends with the panic; its runner reports it.
            return;
        }
        eprintln!("siem-agent: error: internal error (please report): {msg}");
        std::process::exit(1);
    }));
}

/// The text of a panic's payload (`panic!` with a message gives a String
/// or a &str).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    redact(text).replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::panic_text;

    #[test]
    fn a_panics_text_is_one_redacted_line() {
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("bad\npage"));
        assert_eq!(panic_text(owned.as_ref()), "bad page");
        let fixed: Box<dyn std::any::Any + Send> = Box::new("static text");
        assert_eq!(panic_text(fixed.as_ref()), "static text");
        let other: Box<dyn std::any::Any + Send> = Box::new(42_u8);
        assert_eq!(panic_text(other.as_ref()), "(no message)");
        crate::secret::register("s3cr3t-value");
        let secret: Box<dyn std::any::Any + Send> = Box::new(String::from("key s3cr3t-value"));
        assert!(!panic_text(secret.as_ref()).contains("s3cr3t-value"));
    }
}
