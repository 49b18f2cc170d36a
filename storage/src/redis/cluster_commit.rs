//! Commits on a Redis Cluster: one script call per unit (each unit's keys share a hash tag, so
//! one slot), the registry unit first, then `WAIT` on the master of every slot written when
//! replicas must confirm. Batches are not pipelined here: each is answered before the next is
//! sent, so a failure leaves at most one batch to send again, and its units' applied numbers
//! make that retry apply each unit once.

use std::collections::BTreeSet;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{RedisError, Value};

use super::encode::{EncodedBatch, EncodedUnit};
use super::keys::{cluster_slot, Keys, Unit};
use super::link::Conn;
use super::ownership::{staging_key, Ownership};
use super::pipeline::Outcome;
use super::scripts;

/// One batch for a cluster.
pub(crate) struct ClusterBatch<'a> {
    pub keys: &'a Keys,
    pub ownership: &'a Ownership,
    pub batch: &'a EncodedBatch,
    /// Renew the owner lease with this commit.
    pub renew: bool,
    /// The batch's number (see `scripts::COMMIT`).
    pub number: u64,
    /// Replicas that must confirm each written slot, and how long to wait in ms.
    pub replicas: (u32, u64),
}

/// Applies every unit of the batch, then waits for the replicas.
pub(crate) fn commit(
    connection: &mut Conn,
    request: &ClusterBatch<'_>,
) -> Result<Outcome, RedisError> {
    let has_registry = request
        .batch
        .units
        .first()
        .is_some_and(|unit| unit.unit == Unit::Registry);
    if request.renew && !has_registry {
        owner_invocation(request, None).invoke::<i64>(connection)?;
    }
    let mut slots = BTreeSet::new();
    for unit in &request.batch.units {
        let applied_key = request.keys.applied(&unit.unit);
        slots.insert(cluster_slot(&applied_key));
        let invocation = match unit.unit {
            Unit::Registry => owner_invocation(request, Some(unit)),
            Unit::Queue(_) => unit_invocation(request, unit, applied_key),
        };
        match invocation.invoke::<Value>(connection)? {
            Value::Int(-1) => {}
            Value::Int(ran) if ran == unit.commands as i64 => {}
            Value::Int(ran) => {
                return Ok(Outcome::Miscounted {
                    ran,
                    expected: unit.commands,
                })
            }
            other => return Ok(Outcome::Unexpected(format!("{other:?}"))),
        }
    }
    let (wanted, timeout_ms) = request.replicas;
    if wanted == 0 {
        return Ok(Outcome::Applied);
    }
    let Conn::Cluster(cluster) = connection else {
        unreachable!("cluster commits run on a cluster connection");
    };
    for slot in slots {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot,
            SlotAddr::Master,
        )));
        let wait = redis::cmd("WAIT").arg(wanted).arg(timeout_ms).clone();
        match cluster.route_command(&wait, route)? {
            Value::Int(confirmed) if confirmed >= i64::from(wanted) => {}
            Value::Int(confirmed) => return Ok(Outcome::NotReplicated { confirmed, wanted }),
            other => return Ok(Outcome::Unexpected(format!("{other:?} to WAIT"))),
        }
    }
    Ok(Outcome::Applied)
}

/// The commit script in `owner` mode: checks (and maybe renews) the owner lease, then applies
/// the registry unit, if any.
fn owner_invocation(
    request: &ClusterBatch<'_>,
    unit: Option<&EncodedUnit>,
) -> redis::ScriptInvocation<'static> {
    let ClusterBatch {
        keys, ownership, ..
    } = *request;
    let owner_id = ownership.owner_id();
    let mut invocation = scripts::COMMIT.prepare_invoke();
    invocation
        .key(keys.owner())
        .key(keys.fence())
        .key(staging_key(keys, owner_id));
    if unit.is_some() {
        invocation.key(keys.applied(&Unit::Registry));
    }
    invocation
        .arg("owner")
        .arg(owner_id)
        .arg(ownership.fencing_token())
        .arg(ownership.lease_ms())
        .arg("inline")
        .arg(if request.renew { "renew" } else { "keep" });
    match unit {
        None => invocation.arg(0).arg(0),
        Some(unit) => add_unit(&mut invocation, request.number, unit),
    };
    invocation
}

/// The commit script in `units` mode for one queue's unit.
fn unit_invocation(
    request: &ClusterBatch<'_>,
    unit: &EncodedUnit,
    applied_key: String,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = scripts::COMMIT.prepare_invoke();
    invocation
        .key(applied_key)
        .arg("units")
        .arg(request.ownership.owner_id())
        .arg(request.ownership.fencing_token())
        .arg(request.ownership.lease_ms())
        .arg("inline")
        .arg("keep");
    add_unit(&mut invocation, request.number, unit);
    invocation
}

fn add_unit<'i>(
    invocation: &'i mut redis::ScriptInvocation<'static>,
    number: u64,
    unit: &EncodedUnit,
) -> &'i mut redis::ScriptInvocation<'static> {
    invocation.arg(number).arg(1).arg(unit.chunks.len());
    for chunk in &unit.chunks {
        invocation.arg(chunk.as_slice());
    }
    invocation
}
