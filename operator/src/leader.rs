//! Leader election with a `coordination.k8s.io/v1` Lease, so that of several operator replicas
//! exactly one recruits, sends transactions and settles (two leaders could assign a task twice).
//!
//! The decision is pure ([`decide`]); the edge ([`LeaderElector`]) reads the Lease and writes it
//! back with the `resourceVersion` it read, so two replicas racing for an expired Lease cannot both
//! win: the API server accepts the first write and answers the second with a conflict, and that
//! replica follows.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

/// What a replica should do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Another replica holds it until `expires`.
    Follow { holder: String, expires: Timestamp },
}

/// The decision for replica `me` at `now`, given the Lease's spec (if the Lease exists).
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else { return Decision::Acquire };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == me {
        return Decision::Renew;
    }
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed {
        Some(renewed) if now <= renewed + duration => Decision::Follow {
            holder: holder.to_string(),
            expires: renewed + duration,
        },
        _ => Decision::Acquire,
    }
}

/// The Lease spec after `decision` (Acquire or Renew) by `me`.
pub fn next_spec(
    previous: Option<&LeaseSpec>,
    me: &str,
    now: Timestamp,
    duration_seconds: i32,
    renew: bool,
) -> LeaseSpec {
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration_seconds),
        acquire_time: if renew {
            previous.and_then(|p| p.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if renew || previous.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..LeaseSpec::default()
    }
}

/// Whether this replica leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    Leader,
    Follower { holder: String },
}

/// Takes or renews one Lease for one replica.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration_seconds: i32,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish()
    }
}

impl LeaderElector {
    /// An elector for Lease `name` in `namespace`, as replica `identity` (its pod name), holding the
    /// Lease for `duration_seconds` after each renewal (renew well within it: a third is usual).
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str, duration_seconds: i32) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            duration_seconds,
        }
    }

    /// Reads the Lease and takes or renews it if this replica may. Losing a race is not an error.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Leadership, kube::Error> {
        let current = self.api.get_opt(&self.name).await?;
        let spec = current.as_ref().and_then(|l| l.spec.as_ref());
        let renew = match decide(spec, &self.identity, now) {
            Decision::Follow { holder, .. } => return Ok(Leadership::Follower { holder }),
            Decision::Renew => true,
            Decision::Acquire => false,
        };
        let next = next_spec(spec, &self.identity, now, self.duration_seconds, renew);
        let written = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(next),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // Keeps the resourceVersion read above: a concurrent writer makes this a conflict.
                lease.spec = Some(next);
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(_) => Ok(Leadership::Leader),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let holder = self
                    .api
                    .get_opt(&self.name)
                    .await?
                    .and_then(|l| l.spec?.holder_identity)
                    .unwrap_or_default();
                Ok(Leadership::Follower { holder })
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it, so that another replica takes over at its next
    /// try instead of waiting for the Lease to expire (a rolling update would otherwise leave no
    /// leader for a whole Lease duration). Call it only after this replica stopped acting.
    pub async fn release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        *spec = released_spec(spec, Timestamp::now());
        // With the resourceVersion read above: a replica that took the Lease meanwhile keeps it.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The Lease spec once its holder gave it up at `now`: no holder, so [`decide`] tells the next
/// replica to acquire it at once.
pub fn released_spec(previous: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: None,
        renew_time: Some(MicroTime(now)),
        lease_transitions: previous.lease_transitions,
        ..LeaseSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn held_by(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(at(renewed))),
            acquire_time: Some(MicroTime(at("2026-11-24T09:00:00Z"))),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let held = held_by("a", "2026-01-01T00:00:00Z");
        let released = released_spec(&held, at("2026-01-01T00:00:01Z"));
        assert_eq!(
            decide(Some(&released), "b", at("2026-01-01T00:00:01Z")),
            Decision::Acquire
        );
        assert_eq!(released.lease_transitions, held.lease_transitions);
    }

    #[test]
    fn follow_a_live_holder_take_over_an_expired_one_renew_our_own() {
        let now = at("2026-11-24T10:00:10Z");
        assert_eq!(decide(None, "a", now), Decision::Acquire);
        let live = held_by("b", "2026-11-24T10:00:00Z");
        assert_eq!(
            decide(Some(&live), "a", now),
            Decision::Follow {
                holder: "b".into(),
                expires: at("2026-11-24T10:00:15Z")
            }
        );
        assert_eq!(decide(Some(&live), "b", now), Decision::Renew);
        let expired = held_by("b", "2026-11-24T09:59:50Z");
        assert_eq!(decide(Some(&expired), "a", now), Decision::Acquire);
    }

    #[test]
    fn a_takeover_counts_a_transition_and_a_renewal_keeps_the_acquire_time() {
        let now = at("2026-11-24T10:00:10Z");
        let previous = held_by("b", "2026-11-24T09:59:00Z");
        let taken = next_spec(Some(&previous), "a", now, 15, false);
        assert_eq!(
            (taken.holder_identity.as_deref(), taken.lease_transitions),
            (Some("a"), Some(3))
        );
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        let renewed = next_spec(Some(&taken), "a", at("2026-11-24T10:00:15Z"), 15, true);
        assert_eq!(
            (renewed.lease_transitions, renewed.acquire_time),
            (Some(3), Some(MicroTime(now)))
        );
    }
}
