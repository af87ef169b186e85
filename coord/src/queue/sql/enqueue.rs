//! Enqueueing on the embedded backend: callers' requests wait in a list,
//! and whoever gets the write lock next writes all of them in one
//! transaction (group commit), each request keeping its own semantics.

use super::*;

impl Inner {
    /// Takes the oldest waiting enqueues, as many as fit in one group.
    pub(super) fn take_batch(&self) -> Vec<Waiter> {
        let mut pending = self.pending();
        let mut jobs = 0;
        let mut take = 0;
        for waiter in pending.iter() {
            let n = waiter.request.jobs.len();
            if take > 0 && jobs + n > MAX_GROUP_JOBS {
                break;
            }
            jobs += n;
            take += 1;
        }
        pending.drain(..take).collect()
    }

    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        // A poisoned lock only means a panic elsewhere mid-push into a
        // plain list; the list is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SqlBackend {
    /// Writes an enqueue together with any others waiting at the time.
    ///
    /// A commit costs far more than inserting a row, so with many producers
    /// (one HTTP request per job) writing each enqueue in its own
    /// transaction would cap the rate at a few thousand per second. Instead
    /// each caller queues its request and waits for the write lock; the
    /// first to get it takes the queued requests (up to [`MAX_GROUP_JOBS`]
    /// jobs) and writes them in one transaction, in arrival order, from a
    /// spawned task so that a caller
    /// giving up (a request timeout) cannot abandon the others' writes
    /// half-way. Each request keeps its own semantics: ids in its input
    /// order, existing caller-given ids left alone.
    pub(super) async fn enqueue_grouped(&self, request: EnqueueRequest) -> Result<Vec<JobId>> {
        let request = Arc::new(request);
        let (reply, mut answer) = oneshot::channel();
        self.inner.pending().push(Waiter {
            request: request.clone(),
            reply,
        });
        let _withdraw = Withdraw {
            inner: &self.inner,
            request: &request,
        };
        let abandoned = |_| {
            Err(CoordError::Unavailable(
                "the enqueue was dropped before it was written (runtime shutting down?)".into(),
            ))
        };
        loop {
            // Another caller's writer may take this request while we wait
            // for the lock: then stop waiting for the lock, or the lock
            // would pass from caller to caller with nothing left to write.
            let lock = tokio::select! {
                biased;
                answered = &mut answer => return answered.unwrap_or_else(abandoned),
                lock = self.inner.write_lock.clone().lock_owned() => lock,
            };
            let batch = self.inner.take_batch();
            let mine = batch.iter().any(|w| Arc::ptr_eq(&w.request, &request));
            match batch.as_slice() {
                // An earlier writer took ours; its answer is on the way.
                [] => {
                    drop(lock);
                    return answer.await.unwrap_or_else(abandoned);
                }
                // Only ours: write it here, saving the task hand-over.
                [_] if mine => {
                    let (mut ids, events) = self.write_enqueues(lock, &[&*request]).await?;
                    self.publish_all(events);
                    return Ok(ids.pop().unwrap_or_default());
                }
                _ => {
                    let this = self.clone();
                    tokio::spawn(async move { this.flush_enqueues(lock, batch).await });
                    if mine {
                        return answer.await.unwrap_or_else(abandoned);
                    }
                    // Ours did not fit in this group: wait for the next.
                }
            }
        }
    }

    /// Writes a batch of waiting enqueues and answers each caller. Should
    /// the shared transaction fail, each request is retried on its own so
    /// that one bad request cannot fail the others.
    pub(super) async fn flush_enqueues(self, lock: OwnedMutexGuard<()>, batch: Vec<Waiter>) {
        let requests: Vec<&EnqueueRequest> = batch.iter().map(|w| &*w.request).collect();
        match self.write_enqueues(lock, &requests).await {
            Ok((ids, events)) => {
                self.publish_all(events);
                for (waiter, ids) in batch.into_iter().zip(ids) {
                    let _ = waiter.reply.send(Ok(ids));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(waiter) = batch.into_iter().next() {
                    let _ = waiter.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "grouped enqueue failed; writing each request alone");
                for waiter in batch {
                    let lock = self.inner.write_lock.clone().lock_owned().await;
                    let result = self.write_enqueues(lock, &[&*waiter.request]).await;
                    let result = result.map(|(mut ids, events)| {
                        self.publish_all(events);
                        ids.pop().unwrap_or_default()
                    });
                    let _ = waiter.reply.send(result);
                }
            }
        }
    }

    /// Writes enqueue requests in one transaction; returns each request's
    /// ids and the events to publish (one per queue).
    pub(super) async fn write_enqueues(
        &self,
        lock: OwnedMutexGuard<()>,
        requests: &[&EnqueueRequest],
    ) -> Result<(Vec<Vec<JobId>>, Vec<QueueEvent>)> {
        let written = self.write_enqueues_tx(lock, requests).await;
        self.inner.noted(written)
    }

    pub(super) async fn write_enqueues_tx(
        &self,
        lock: OwnedMutexGuard<()>,
        requests: &[&EnqueueRequest],
    ) -> Result<(Vec<Vec<JobId>>, Vec<QueueEvent>)> {
        let mut w = Writer::begin(&self.inner, lock).await?;
        let now = now_ms();
        // Queues in order of first appearance, each with its requests.
        let mut groups: Vec<(&QueueName, Vec<usize>)> = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            match groups.iter_mut().find(|(q, _)| **q == request.queue) {
                Some((_, members)) => members.push(i),
                None => groups.push((&request.queue, vec![i])),
            }
        }
        let mut ids = vec![Vec::new(); requests.len()];
        let mut events = Vec::new();
        for (queue, members) in groups {
            let group: Vec<&EnqueueRequest> = members.iter().map(|&i| requests[i]).collect();
            let (group_ids, added) = enqueue_into(w.conn(), queue, now, &group).await?;
            for (i, request_ids) in members.into_iter().zip(group_ids) {
                ids[i] = request_ids;
            }
            let mut batch = Events::new(queue, now);
            batch.push(QueueEventKind::Enqueued, added);
            events.extend(batch.events);
        }
        w.commit().await?;
        Ok((ids, events))
    }
}

/// One caller's enqueue, encoded, as the group commit writes it.
pub(super) struct EnqueueRequest {
    pub(super) queue: QueueName,
    pub(super) jobs: Vec<NewJob>,
    /// Data and options of each job as JSON text.
    pub(super) encoded: Vec<(String, String)>,
}

/// An enqueue waiting in [`Inner::pending`] and where its answer goes.
pub(super) struct Waiter {
    pub(super) request: Arc<EnqueueRequest>,
    pub(super) reply: oneshot::Sender<Result<Vec<JobId>>>,
}

/// Takes a caller's enqueue back out of the pending list when the caller
/// gives up before a writer took it, so it is not written behind its back.
pub(super) struct Withdraw<'a> {
    pub(super) inner: &'a Inner,
    pub(super) request: &'a Arc<EnqueueRequest>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.inner
            .pending()
            .retain(|w| !Arc::ptr_eq(&w.request, self.request));
    }
}

/// Adds the jobs of several enqueue requests for one queue, in order, with
/// one insert; returns each request's ids and the ids of the jobs added.
pub(super) async fn enqueue_into(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    now: i64,
    requests: &[&EnqueueRequest],
) -> Result<(Vec<Vec<JobId>>, Vec<JobId>)> {
    let mut meta = match load_meta(conn, queue).await? {
        Some(meta) => meta,
        None => {
            sqlx::query("INSERT INTO queues (name, created_at) VALUES ($1, $2)")
                .bind(queue.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            Meta::default()
        }
    };
    let jobs = || requests.iter().flat_map(|r| r.jobs.iter());

    // Which of the ids these jobs may use are taken already: the callers'
    // ids and the generated ids they will most likely get.
    let generate = jobs().filter(|j| j.options.job_id.is_none()).count() as i64;
    let mut probe: Vec<String> = jobs()
        .filter_map(|j| j.options.job_id.as_ref().map(|id| id.as_str().to_owned()))
        .collect();
    probe.extend((1..=generate).map(|k| (meta.next_id + k).to_string()));
    let mut taken = existing_ids(conn, queue, &probe).await?;
    let probed_up_to = meta.next_id + generate;

    let mut all_ids = Vec::with_capacity(requests.len());
    let mut rows = Vec::new();
    let mut added = Vec::new();
    let mut delta = Delta::default();
    for request in requests {
        let mut ids = Vec::with_capacity(request.jobs.len());
        for (job, (data, options)) in request.jobs.iter().zip(&request.encoded) {
            let id = match &job.options.job_id {
                Some(given) => {
                    if !taken.insert(given.as_str().to_owned()) {
                        // Idempotent enqueue: the existing job stays as it is.
                        ids.push(given.clone());
                        continue;
                    }
                    given.clone()
                }
                None => loop {
                    // A caller-given id may already hold a number: skip it.
                    meta.next_id += 1;
                    let candidate = meta.next_id.to_string();
                    if meta.next_id > probed_up_to
                        && !existing_ids(conn, queue, std::slice::from_ref(&candidate))
                            .await?
                            .is_empty()
                    {
                        continue;
                    }
                    if taken.insert(candidate.clone()) {
                        break stored_id(candidate)?;
                    }
                },
            };
            let priority = i64::from(job.options.priority);
            let delay = job.options.delay_ms.max(0);
            let (state, sort_key, run_at) = if delay > 0 {
                let run_at = now.saturating_add(delay);
                (JobState::Delayed, run_at, Some(run_at))
            } else {
                meta.seq += 1;
                (JobState::Waiting, waiting_key(priority, meta.seq), None)
            };
            delta.add(state, 1);
            rows.push(NewRow {
                id: id.as_str().to_owned(),
                name: &job.name,
                data,
                options,
                priority,
                max_attempts: i64::from(job.options.attempts),
                state: state.as_str(),
                sort_key,
                run_at,
            });
            added.push(id.clone());
            ids.push(id);
        }
        all_ids.push(ids);
    }
    if !rows.is_empty() {
        sqlx::query(
            "INSERT INTO jobs (queue, id, name, data, options, priority, max_attempts, state,
                               sort_key, run_at, created_at)
             SELECT $1, j.value ->> 'id', j.value ->> 'name', j.value ->> 'data',
                    j.value ->> 'options', j.value ->> 'priority', j.value ->> 'maxAttempts',
                    j.value ->> 'state', j.value ->> 'sortKey', j.value ->> 'runAt', $2
             FROM json_each($3) AS j",
        )
        .bind(queue.as_str())
        .bind(now)
        .bind(internal_json(&rows)?)
        .execute(&mut *conn)
        .await?;
    }
    save_meta(conn, queue, &meta, &delta).await?;
    Ok((all_ids, added))
}

/// Which of `ids` exist in the queue.
pub(super) async fn existing_ids(
    conn: &mut SqliteConnection,
    queue: &QueueName,
    ids: &[String],
) -> Result<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE queue = $1 AND id IN (SELECT value FROM json_each($2))",
    )
    .bind(queue.as_str())
    .bind(internal_json(ids)?)
    .fetch_all(&mut *conn)
    .await?;
    Ok(found.into_iter().collect())
}

/// One job of a bulk insert, as `enqueue_bulk` hands it to `json_each`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewRow<'a> {
    pub(super) id: String,
    pub(super) name: &'a str,
    /// JSON text, carried as a string so it is stored exactly as encoded.
    pub(super) data: &'a str,
    pub(super) options: &'a str,
    pub(super) priority: i64,
    pub(super) max_attempts: i64,
    pub(super) state: &'static str,
    pub(super) sort_key: i64,
    pub(super) run_at: Option<i64>,
}
