//! The simulated clients: thinking, sending requests to a node they believe leads,
//! following redirects, retrying after timeouts, and recording every operation's call and
//! outcome in the history that the linearizability check reads.

use super::*;

impl Simulation {
    pub(super) fn client_latency(&mut self) -> u64 {
        self.network.latency(&mut self.random)
    }

    pub(super) fn on_client_next(&mut self, client: u64) {
        if self.finished {
            return;
        }
        let position = client_position(client);
        let call = self.workload.next_call(client, &mut self.random);
        let operation = {
            let state = &mut self.clients[position];
            state.next_operation += 1;
            state.attempts = 0;
            state.current = Some(CurrentOperation {
                operation: state.next_operation,
                call: call.clone(),
                invoke_time: self.now,
            });
            state.next_operation
        };
        trace!(self, "c{client}: invoke #{operation} {call}");
        let timeout = self.now + self.options.client_timeout_nanos;
        self.queue
            .push(timeout, Event::ClientTimeout { client, operation });
        self.send_request(client);
    }

    pub(super) fn send_request(&mut self, client: u64) {
        let position = client_position(client);
        let Some(current) = &self.clients[position].current else {
            return;
        };
        let (operation, call) = (current.operation, current.call.clone());
        let mut node = self.clients[position].target;
        // Half the reads go to any node, so that followers serve reads too (they forward
        // the read index to the leader, then read their own state).
        if matches!(call, Call::Get { .. }) && self.random.next_u64().is_multiple_of(2) {
            node = self.random_node();
        }
        let arrival = self.now + self.client_latency();
        self.queue.push(
            arrival,
            Event::ClientArrive {
                node,
                client,
                operation,
                call,
            },
        );
    }

    pub(super) fn on_client_arrive(&mut self, id: NodeId, client: u64, operation: u64, call: Call) {
        if self.is_down(id) {
            return;
        }
        // Half the reads take the read-index path (answered by whichever node the client
        // reached, forwarded to the leader by followers); the others go through the log.
        if matches!(call, Call::Get { .. }) && self.random.next_u64().is_multiple_of(2) {
            let Some(node) = self.server(id).node.as_mut() else {
                return;
            };
            let reply = match node.read_index() {
                Ok(read) => {
                    trace!(self, "{id}: read {read} for c{client} #{operation}");
                    self.server(id)
                        .reads
                        .insert(read, (client, operation, call));
                    self.drain(id);
                    return;
                }
                Err(ReadError::NoLeader) => Reply::Redirect(None),
                Err(_) => Reply::Failed,
            };
            self.drain(id);
            self.reply(client, operation, reply);
            return;
        }
        let command = Command {
            client,
            operation,
            call,
        }
        .encode();
        let mut outcome = None;
        self.with_node(id, |node| outcome = Some(node.propose(command)));
        let reply = match outcome {
            Some(Ok(Proposal::Appended(log_id))) => {
                trace!(self, "{id}: appended c{client} #{operation} at {log_id}");
                self.server(id)
                    .pending
                    .insert(log_id.index, (log_id, client, operation));
                return;
            }
            Some(Ok(Proposal::Forwarded { leader })) => Reply::Redirect(Some(leader)),
            Some(Err(ProposeError::NotLeader { leader_hint })) => Reply::Redirect(leader_hint),
            Some(Err(_)) | None => Reply::Failed,
        };
        self.reply(client, operation, reply);
    }

    pub(super) fn reply(&mut self, client: u64, operation: u64, reply: Reply) {
        let arrival = self.now + self.client_latency();
        self.queue.push(
            arrival,
            Event::ClientReply {
                client,
                operation,
                reply,
            },
        );
    }

    pub(super) fn on_client_reply(&mut self, client: u64, operation: u64, reply: Reply) {
        let position = client_position(client);
        let is_current = self.clients[position]
            .current
            .as_ref()
            .is_some_and(|current| current.operation == operation);
        if !is_current {
            return;
        }
        match reply {
            Reply::Done(result) => self.complete(client, Outcome::Ok(result)),
            Reply::Redirect(hint) => {
                let target = match hint {
                    Some(leader) => leader,
                    None => self.random_node(),
                };
                trace!(self, "c{client}: #{operation} redirected to {target}");
                self.retry(client, target);
            }
            Reply::Failed => {
                let target = self.random_node();
                trace!(self, "c{client}: #{operation} failed, retrying at {target}");
                self.retry(client, target);
            }
        }
    }

    /// Tries the current operation again after a backoff: the previous attempt certainly
    /// did not take effect, so this cannot apply it twice.
    pub(super) fn retry(&mut self, client: u64, target: NodeId) {
        let position = client_position(client);
        let state = &mut self.clients[position];
        state.target = target;
        state.attempts = (state.attempts + 1).min(6);
        let backoff_max = (5 * MILLISECOND) << state.attempts;
        let backoff = self.random.next_u64() % backoff_max;
        let Some(current) = &self.clients[position].current else {
            return;
        };
        let (operation, call) = (current.operation, current.call.clone());
        let arrival = self.now + backoff + self.network.latency(&mut self.random);
        self.queue.push(
            arrival,
            Event::ClientArrive {
                node: target,
                client,
                operation,
                call,
            },
        );
    }

    pub(super) fn on_client_timeout(&mut self, client: u64, operation: u64) {
        let position = client_position(client);
        let is_current = self.clients[position]
            .current
            .as_ref()
            .is_some_and(|current| current.operation == operation);
        if is_current {
            self.complete(client, Outcome::Unknown);
        }
    }

    pub(super) fn complete(&mut self, client: u64, outcome: Outcome) {
        let position = client_position(client);
        let Some(current) = self.clients[position].current.take() else {
            return;
        };
        let complete_time = match outcome {
            Outcome::Unknown => {
                self.statistics.operations_unknown += 1;
                None
            }
            Outcome::Fail => {
                self.statistics.operations_failed += 1;
                Some(self.now)
            }
            Outcome::Ok(_) => {
                self.statistics.operations_ok += 1;
                Some(self.now)
            }
        };
        let operation = Operation {
            process: client,
            call: current.call,
            outcome,
            invoke_time: current.invoke_time,
            complete_time,
        };
        trace!(self, "c{client}: #{} {operation}", current.operation);
        if let (Some(heal), Outcome::Ok(_)) = (self.heal_time, &operation.outcome)
            && operation.invoke_time >= heal
        {
            self.clients[position].served_after_heal = true;
        }
        self.history.push(operation);
        if self.heal_time.is_some() && self.clients.iter().all(|client| client.served_after_heal) {
            trace!(self, "liveness: every client served after the heal");
            self.finished = true;
            return;
        }
        let think = self.random.next_u64() % (5 * MILLISECOND);
        self.queue
            .push(self.now + think, Event::ClientNext { client });
    }
}
