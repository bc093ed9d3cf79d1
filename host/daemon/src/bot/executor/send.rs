//! Sending: the acts the executor has checked go out concurrently within
//! bounds (in all, and per room) and at the homeserver's pace (one pause
//! for everyone after a `429`), each tried again when it is worth it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gleipnir_runtime::Action;

use super::perform::Performed;
use super::{Act, Job, describe};

/// The most requests the executor has out at once.
pub(crate) const AT_ONCE: usize = 16;
/// The most requests out at once in one room: enough for a flood's
/// redactions to go in one wave (Synapse does 13 in a room 16 at a time
/// about a third faster than 4 at a time), while leaving places for other rooms.
pub(super) const AT_ONCE_PER_ROOM: usize = 12;

/// Which jobs may go out at once with their neighbours: bans with bans,
/// kicks with kicks, redactions with redactions (their order among
/// themselves changes nothing; see `jobs::attacker_first`). `None`: this
/// one goes alone, in its place.
pub(crate) fn together(job: &Job) -> Option<u8> {
    match job {
        Job::Act(_, Action::Ban(_)) => Some(0),
        Job::Act(_, Action::Kick(_)) => Some(1),
        Job::Act(_, Action::Redact(_)) => Some(2),
        _ => None,
    }
}

/// When the homeserver said to slow down (a `429`), every request of the
/// executor waits until then: one pause for the homeserver, not one per
/// request, so a burst of bans does not meet the limit sixteen times over.
#[derive(Default)]
pub(crate) struct Pace {
    until: std::sync::Mutex<Option<Instant>>,
}

impl Pace {
    /// Waits until no pause is in force.
    async fn wait(&self) {
        loop {
            let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until.into()).await,
                _ => return,
            }
        }
    }

    /// Holds every request back for `after` from now (a longer pause in
    /// force stays).
    fn hold(&self, after: Duration) {
        let until = Instant::now() + after.min(MOST_PAUSE);
        let mut held = self.until.lock().unwrap_or_else(|e| e.into_inner());
        *held = Some(held.map_or(until, |h| h.max(until)));
    }
}

/// How often a request is tried when the homeserver is unreachable, failing
/// on its side or asking to slow down.
pub(super) const MOST_TRIES: u32 = 8;
/// The longest pause taken at the homeserver's word.
const MOST_PAUSE: Duration = Duration::from_secs(60);
/// The first wait before trying again after a network or server failure
/// (doubling each time).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Sends one act until it is done, failed for good, or tried
/// [`MOST_TRIES`] times: after a `429` everyone waits (`pace`), after a
/// network or server failure this one waits, longer each time.
async fn send_paced<'a, F: Future<Output = Result<Option<String>, Performed>>>(
    act: &'a Act,
    send: &impl Fn(&'a Act) -> F,
    pace: &Pace,
) -> Result<Option<String>, Performed> {
    let mut backoff = FIRST_BACKOFF;
    for tries in 1.. {
        pace.wait().await;
        let result = send(act).await;
        match &result {
            Err(Performed::Again { after, why }) if tries < MOST_TRIES => {
                tracing::warn!(act = %describe(act), "trying again: {why}");
                match after {
                    Some(after) => pace.hold(*after),
                    None => {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
            _ => return result,
        }
    }
    unreachable!("the loop returns")
}

/// Sends the acts given (`None`: nothing to send there), concurrently within
/// [`AT_ONCE`] and [`AT_ONCE_PER_ROOM`] and at the homeserver's pace,
/// telling `sent` the place of each as its request returns; the results in
/// the order given.
pub(super) async fn send_together<'a, F: Future<Output = Result<Option<String>, Performed>>>(
    acts: impl Iterator<Item = Option<&'a Act>>,
    send: impl Fn(&'a Act) -> F,
    sent: &(dyn Fn(usize) + Sync),
    pace: &Pace,
) -> Vec<Option<Result<Option<String>, Performed>>> {
    use tokio::sync::Semaphore;
    let acts: Vec<Option<&Act>> = acts.collect();
    let all = Semaphore::new(AT_ONCE);
    let mut rooms: HashMap<&str, Semaphore> = HashMap::new();
    for act in acts.iter().flatten() {
        rooms.entry(act_room(act)).or_insert_with(|| Semaphore::new(AT_ONCE_PER_ROOM));
    }
    let sends = acts.iter().enumerate().map(|(i, act)| {
        let (all, rooms, send) = (&all, &rooms, &send);
        async move {
            let act = (*act)?;
            // The room's turn first, so a busy room holds none of the others' places.
            let _room = rooms[act_room(act)].acquire().await.ok()?;
            let _place = all.acquire().await.ok()?;
            let result = send_paced(act, send, pace).await;
            sent(i);
            Some(result)
        }
    });
    futures_util::future::join_all(sends).await
}

/// The room an act happens in, for the per-room bound (empty for none).
pub(super) fn act_room(act: &Act) -> &str {
    match act {
        Act::Contract(Action::Ban(a) | Action::Kick(a) | Action::Unban(a)) => &a.room_id,
        Act::Contract(Action::Redact(a)) => &a.room_id,
        Act::Contract(_) => "",
        Act::ServerAcl { room, .. } | Act::TakeDownRoom { room, .. } => room,
        Act::WriteRule { list, .. } => list,
    }
}
