//! `switchyard enqueue`: one job from the shell.
//!
//! The job is built and validated before any backend is contacted, so a
//! typo in the JSON fails instantly with the parser's reason instead of
//! after a connection timeout.

use coord::queue::{JobId, JobOptions, NewJob, QueueName};

use crate::config::Settings;
use crate::config::cli::EnqueueArgs;
use crate::startup::{StartupError, connect_queues};

/// Why a job could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The queue name, data or options are not acceptable.
    #[error(transparent)]
    Invalid(coord::CoordError),
    /// The backend could not be reached.
    #[error("{0}")]
    Startup(#[from] StartupError),
    /// The backend refused or failed the enqueue.
    #[error("enqueue failed: {0}")]
    Backend(coord::CoordError),
}

/// Turns the command's arguments into a validated queue name and job.
pub fn build_job(args: &EnqueueArgs) -> Result<(QueueName, NewJob), coord::CoordError> {
    let queue = QueueName::new(args.queue.clone())?;
    let defaults = JobOptions::default();
    let options = JobOptions {
        priority: args.priority.unwrap_or(defaults.priority),
        delay_ms: args.delay_ms.unwrap_or(defaults.delay_ms),
        attempts: args.attempts.unwrap_or(defaults.attempts),
        job_id: args.job_id.clone().map(JobId::new).transpose()?,
        ..defaults
    };
    let job = NewJob::from_json_text(args.name.clone(), &args.data)?.with_options(options);
    job.validate()?;
    Ok((queue, job))
}

/// Enqueues the job on the configured backend and returns its id.
pub async fn run(settings: &Settings, args: &EnqueueArgs) -> Result<JobId, EnqueueError> {
    let (queue, job) = build_job(args).map_err(EnqueueError::Invalid)?;
    let queues = connect_queues(settings).await?;
    queues
        .enqueue(&queue, job)
        .await
        .map_err(EnqueueError::Backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data: &str) -> EnqueueArgs {
        EnqueueArgs {
            queue: "emails".into(),
            name: "welcome".into(),
            data: data.into(),
            delay_ms: None,
            priority: None,
            attempts: None,
            job_id: None,
        }
    }

    #[test]
    fn builds_a_job_with_options() {
        let mut a = args(r#"{"to":"a@example.com"}"#);
        a.delay_ms = Some(1500);
        a.priority = Some(3);
        a.attempts = Some(5);
        a.job_id = Some("welcome-42".into());
        let (queue, job) = build_job(&a).expect("valid");
        assert_eq!(queue.as_str(), "emails");
        assert_eq!(job.data["to"], "a@example.com");
        assert_eq!(job.options.delay_ms, 1500);
        assert_eq!(job.options.priority, 3);
        assert_eq!(job.options.attempts, 5);
        assert_eq!(
            job.options.job_id.map(String::from).as_deref(),
            Some("welcome-42")
        );
    }

    #[test]
    fn rejects_bad_input_before_connecting() {
        let err = build_job(&args("{not json")).expect_err("malformed");
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        let mut a = args("{}");
        a.delay_ms = Some(-1);
        let err = build_job(&a).expect_err("negative delay");
        assert!(
            err.to_string().contains("delay must not be negative"),
            "{err}"
        );
        let mut a = args("{}");
        a.queue = "no spaces".into();
        assert!(build_job(&a).is_err());
    }
}
