//! How a binary ends: the error that stopped it logged with its causes, and the exit code.

use std::fmt;
use std::process::ExitCode;

/// An error and its causes, for a log line: `what failed: why: why that`. A cause that the
/// message before it already quotes is not repeated (kube's errors, for one, quote theirs).
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut message = self.0.to_string();
        f.write_str(&message)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !message.contains(&text) {
                write!(f, ": {text}")?;
            }
            message = text;
            cause = error.source();
        }
        Ok(())
    }
}

/// The exit code of a process whose work ended with `result`; an error is logged, with its
/// causes, as the reason `name` stopped.
pub fn exit_code<E: std::error::Error>(result: Result<(), E>, name: &str) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %Chain(&error), "{name} stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message says `message`, caused by `source`.
    #[derive(Debug)]
    struct Failed {
        message: &'static str,
        source: Option<std::io::Error>,
    }

    impl fmt::Display for Failed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_ref().map(|source| source as _)
        }
    }

    fn failed(message: &'static str, cause: Option<&str>) -> Failed {
        Failed {
            message,
            source: cause.map(std::io::Error::other),
        }
    }

    #[test]
    fn a_chain_shows_each_cause_after_the_error() {
        let error = failed("cannot listen", Some("address in use"));
        assert_eq!(Chain(&error).to_string(), "cannot listen: address in use");
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_not_repeated() {
        let error = failed("cannot listen: address in use", Some("address in use"));
        assert_eq!(Chain(&error).to_string(), "cannot listen: address in use");
    }

    #[test]
    fn an_error_without_causes_is_its_message() {
        let error = failed("lost the lease", None);
        assert_eq!(Chain(&error).to_string(), "lost the lease");
    }

    #[test]
    fn only_an_error_is_a_failure() {
        assert_eq!(exit_code(Ok::<(), Failed>(()), "test"), ExitCode::SUCCESS);
        assert_eq!(
            exit_code(Err(failed("broken", None)), "test"),
            ExitCode::FAILURE
        );
    }
}
