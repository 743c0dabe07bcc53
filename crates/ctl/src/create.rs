//! Forming a new cluster from empty nodes, with the commands `redis-cli
//! --cluster create --cluster-replicas R` sends:
//!
//! 1. each node: `INFO` must say `cluster_enabled:1` with no `db0` keys,
//!    `CLUSTER INFO` `cluster_known_nodes:1`, and `CLUSTER NODES` gives its
//!    id and bus port;
//! 2. each master: one `CLUSTER ADDSLOTS` with every slot of its range;
//! 3. each node in order: `CLUSTER SET-CONFIG-EPOCH 1..N` (distinct epochs
//!    so that no epoch collision has to be resolved; replies ignored, as
//!    redis-cli does);
//! 4. every node but the first: `CLUSTER MEET <first-ip> <first-port>`,
//!    plus the bus port when it is not port + 10000;
//! 5. wait until every node's `CLUSTER NODES` shows the same slot
//!    ownership ([`nodes::slot_signature`]);
//! 6. each replica: `CLUSTER REPLICATE <master-id>`;
//! 7. wait until every node says `cluster_state:ok`.
//!
//! Unlike redis-cli, the waits are bounded ([`CreateOptions::join_timeout`])
//! and end with an error saying which nodes were behind.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Client, ClientError};
use crate::nodes::{self, info_field, parse_nodes};

mod plan;

pub use plan::{slot_ranges, split_addr, MasterPlan, Plan, ReplicaPlan, MIN_MASTERS, SLOTS};

/// Why a cluster could not be formed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(
        "{nodes} nodes with {replicas} replica(s) per master make {masters} master(s); \
         a cluster needs at least {MIN_MASTERS}"
    )]
    TooFewNodes { nodes: usize, replicas: usize, masters: usize },
    #[error("{masters} masters cannot share {SLOTS} slots")]
    TooManyMasters { masters: usize },
    #[error("bad node address '{0}': expected ip:port")]
    BadAddress(String),
    #[error("node {0} is listed twice")]
    Duplicate(String),
    #[error("node {addr} is not configured as a cluster node (it needs cluster-enabled yes)")]
    NotClusterNode { addr: String },
    #[error("node {addr} is not empty: {reason}")]
    NotEmpty { addr: String, reason: String },
    /// A reply that does not read as Redis's would.
    #[error("node {addr}: {reason}")]
    BadReply { addr: String, reason: String },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the nodes did not agree on slot ownership within {} ms: {detail}", waited.as_millis())]
    NoAgreement { waited: Duration, detail: String },
    #[error("{addr} could not replicate {master} within {} ms: {message}", waited.as_millis())]
    ReplicateFailed { addr: String, master: String, message: String, waited: Duration },
    #[error("cluster_state did not become ok within {} ms on: {}", waited.as_millis(), pending.join(", "))]
    NotOk { waited: Duration, pending: Vec<String> },
}

/// How [`create`] talks to the nodes and how long it waits.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Replicas per master.
    pub replicas: usize,
    /// Bound on each command (connect, send, reply).
    pub command_timeout: Duration,
    /// Bound on each of the two waits: slot agreement, then
    /// `cluster_state:ok` (REPLICATE's retries share the second).
    pub join_timeout: Duration,
    /// Pause between two polls of the nodes.
    pub poll_interval: Duration,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            replicas: 1,
            command_timeout: Duration::from_secs(5),
            join_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// The cluster that was formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// In the order of the addresses given.
    pub nodes: Vec<PlacedNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedNode {
    pub addr: String,
    pub id: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Serves slots `first..=last`.
    Master { first: u16, last: u16 },
    /// Replicates the master at this address.
    Replica { master: String },
}

/// What step 1 learned about a node.
struct Found {
    id: String,
    bus_port: u16,
}

/// Forms a cluster from `addrs` (`ip:port`, all empty cluster-enabled
/// nodes) as described in the module documentation.
pub async fn create(addrs: &[String], opts: &CreateOptions) -> Result<Layout, CreateError> {
    let plan = Plan::new(addrs, opts.replicas)?;
    let mut clients: Vec<Client> = addrs.iter().map(|a| Client::new(a.as_str(), opts.command_timeout)).collect();

    let mut found = Vec::with_capacity(clients.len());
    for client in &mut clients {
        found.push(check_node(client).await?);
    }
    for (i, f) in found.iter().enumerate() {
        if let Some(j) = found[..i].iter().position(|g| g.id == f.id) {
            // Two addresses reaching the same node.
            return Err(CreateError::Duplicate(format!("{} (same node as {})", addrs[i], addrs[j])));
        }
    }

    for master in &plan.masters {
        let (first, last) = master.slots;
        let mut args: Vec<String> = Vec::with_capacity(usize::from(last - first) + 3);
        args.extend(["CLUSTER".to_owned(), "ADDSLOTS".to_owned()]);
        args.extend((first..=last).map(|s| s.to_string()));
        clients[master.node].ok(&args).await?;
        tracing::info!("{}: slots {first}-{last}", addrs[master.node]);
    }

    for (i, client) in clients.iter_mut().enumerate() {
        let epoch = (i + 1).to_string();
        if let Err(e) = client.ok(&["CLUSTER", "SET-CONFIG-EPOCH", &epoch]).await {
            // redis-cli ignores the reply too: a node that refuses keeps a
            // colliding epoch, which the cluster resolves by itself.
            tracing::debug!("{e}");
        }
    }

    let (first_host, first_port) = split_addr(&addrs[0]).ok_or_else(|| CreateError::BadAddress(addrs[0].clone()))?;
    let mut meet = vec!["CLUSTER".to_owned(), "MEET".to_owned(), first_host.to_owned(), first_port.to_string()];
    if u32::from(found[0].bus_port) != u32::from(first_port) + 10000 {
        meet.push(found[0].bus_port.to_string());
    }
    for client in &mut clients[1..] {
        client.ok(&meet).await?;
    }
    tracing::info!("waiting for the nodes to agree on the slots");
    wait_for_agreement(&mut clients, opts).await?;

    let deadline = Instant::now() + opts.join_timeout;
    for replica in &plan.replicas {
        let master_id = &found[plan.masters[replica.master].node].id;
        replicate(&mut clients[replica.node], master_id, deadline, opts).await?;
    }
    wait_for_state_ok(&mut clients, deadline, opts).await?;

    let mut layout = Layout { nodes: Vec::with_capacity(addrs.len()) };
    for (i, addr) in addrs.iter().enumerate() {
        let role = match plan.masters.iter().find(|m| m.node == i) {
            Some(m) => Role::Master { first: m.slots.0, last: m.slots.1 },
            None => {
                let master = plan.replicas.iter().find(|r| r.node == i).map(|r| plan.masters[r.master].node);
                Role::Replica { master: master.map(|m| addrs[m].clone()).unwrap_or_default() }
            }
        };
        layout.nodes.push(PlacedNode { addr: addr.clone(), id: found[i].id.clone(), role });
    }
    Ok(layout)
}

/// Step 1 for one node.
async fn check_node(client: &mut Client) -> Result<Found, CreateError> {
    let addr = client.addr().to_owned();
    let info = client.text(&["INFO"]).await?;
    if info_field(&info, "cluster_enabled") != Some("1") {
        return Err(CreateError::NotClusterNode { addr });
    }
    if info.lines().any(|l| l.starts_with("db0:")) {
        return Err(CreateError::NotEmpty { addr, reason: "it holds keys in database 0".into() });
    }
    let cluster_info = client.text(&["CLUSTER", "INFO"]).await?;
    match info_field(&cluster_info, "cluster_known_nodes") {
        Some("1") => {}
        Some(n) => return Err(CreateError::NotEmpty { addr, reason: format!("it already knows {n} nodes") }),
        None => return Err(CreateError::BadReply { addr, reason: "CLUSTER INFO without cluster_known_nodes".into() }),
    }
    let text = client.text(&["CLUSTER", "NODES"]).await?;
    let lines = parse_nodes(&text).map_err(|reason| CreateError::BadReply { addr: addr.clone(), reason })?;
    let Some(me) = nodes::myself(&lines) else {
        return Err(CreateError::BadReply { addr, reason: "CLUSTER NODES has no myself line".into() });
    };
    if !me.slots.is_empty() {
        return Err(CreateError::NotEmpty { addr, reason: "it already serves slots".into() });
    }
    Ok(Found { id: me.id.clone(), bus_port: me.bus_port })
}

/// Step 5: polls every node's `CLUSTER NODES` until all slot signatures are
/// equal.
async fn wait_for_agreement(clients: &mut [Client], opts: &CreateOptions) -> Result<(), CreateError> {
    let started = Instant::now();
    let deadline = started + opts.join_timeout;
    let mut views: Vec<Result<String, String>> = Vec::new();
    for _ in 0..max_polls(opts) {
        views.clear();
        for client in clients.iter_mut() {
            let view = match client.text(&["CLUSTER", "NODES"]).await {
                Ok(text) => parse_nodes(&text).map(|lines| nodes::slot_signature(&lines)),
                Err(e) => Err(e.to_string()),
            };
            views.push(view);
        }
        if views.iter().all(|v| v.is_ok() && v == &views[0]) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
    let detail = clients
        .iter()
        .zip(&views)
        .map(|(c, v)| match v {
            Ok(sig) => {
                let owners = if sig.is_empty() { 0 } else { sig.split('|').count() };
                format!("{} sees {owners} slot owner(s)", c.addr())
            }
            Err(e) => format!("{}: {e}", c.addr()),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(CreateError::NoAgreement { waited: started.elapsed(), detail })
}

/// Step 6 for one replica. `ERR Unknown node` means the replica has not
/// heard of its master yet: retried until `deadline`.
async fn replicate(
    client: &mut Client,
    master_id: &str,
    deadline: Instant,
    opts: &CreateOptions,
) -> Result<(), CreateError> {
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..max_polls(opts) {
        match client.ok(&["CLUSTER", "REPLICATE", master_id]).await {
            Ok(_) => {
                tracing::info!("{} replicates {master_id}", client.addr());
                return Ok(());
            }
            Err(ClientError::Reply { message, .. }) if message.starts_with("ERR Unknown node") => last = message,
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
    Err(CreateError::ReplicateFailed {
        addr: client.addr().to_owned(),
        master: master_id.to_owned(),
        message: last,
        waited: started.elapsed(),
    })
}

/// Step 7: polls `CLUSTER INFO` until every node says `cluster_state:ok`.
async fn wait_for_state_ok(clients: &mut [Client], deadline: Instant, opts: &CreateOptions) -> Result<(), CreateError> {
    let started = Instant::now();
    let mut pending = Vec::new();
    for _ in 0..max_polls(opts) {
        pending.clear();
        for client in clients.iter_mut() {
            let ok = match client.text(&["CLUSTER", "INFO"]).await {
                Ok(text) => info_field(&text, "cluster_state") == Some("ok"),
                Err(e) => {
                    tracing::debug!("{e}");
                    false
                }
            };
            if !ok {
                pending.push(client.addr().to_owned());
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
    Err(CreateError::NotOk { waited: started.elapsed(), pending })
}

/// A count bound on each polling loop besides its deadline, so a clock that
/// misbehaves cannot make it spin forever.
fn max_polls(opts: &CreateOptions) -> u128 {
    opts.join_timeout.as_millis() / opts.poll_interval.as_millis().max(1) + 2
}

#[cfg(test)]
mod tests;
