//! Subscriptions shared between connections.
//!
//! When 200 agents of a workspace run the same `escalations` subscription (the same
//! document and variables), every event would be resolved and serialised 200 times
//! into the same bytes. Instead the first such subscriber starts one execution, the
//! **upstream**, which resolves and serialises each event once; every subscriber
//! with the same [`Key`] receives the shared answer and writes it to its socket.
//!
//! Only what cannot differ between those subscribers is shared: agent principals
//! of one workspace and role (fields depend on nothing narrower), and only the
//! root fields that yield nothing but what happens after they start
//! ([`SHAREABLE`]): `messages`, which first replays history, is never shared, nor
//! is a subscription resuming with `after`. Each answer carries the event log
//! cursor of its event (noted by the resolver, see `graphql::live::CursorNote`): a
//! subscriber that falls [`CAPACITY`] answers behind the upstream leaves it and
//! goes on in an execution of its own from the cursor of the last answer it got,
//! caught up from the log like any subscriber. The upstream stops when its last
//! subscriber leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_graphql::Response;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use futures_util::{Stream, StreamExt};
use std::panic::AssertUnwindSafe;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::auth::Principal;
use crate::entity::Role;
use crate::error::AppError;
use crate::graphql::AppSchema;
use crate::graphql::live::{CursorNote, Noted, ResumeAfter};

/// Root subscription fields whose answers depend only on the workspace, the role
/// and the arguments, and that yield only what happens after they start.
pub const SHAREABLE: [&str; 3] = ["escalations", "inbox", "conversationEvents"];

/// Answers an upstream may be ahead of its slowest subscriber.
const CAPACITY: usize = 1024;

/// Subscribers with equal keys get the same answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    query: String,
    operation_name: Option<String>,
    variables: String,
    workspace_id: String,
    role: Role,
}

impl Key {
    /// The key of a prepared request, when it may be shared.
    pub fn of(request: &mut async_graphql::Request, principal: Option<&Principal>) -> Option<Key> {
        let Some(Principal::Agent(agent)) = principal else {
            return None;
        };
        let name = request.operation_name.clone();
        if !shareable(request.parsed_query().ok()?, name.as_deref()) {
            return None;
        }
        Some(Key {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
            workspace_id: agent.workspace_id.clone(),
            role: agent.role,
        })
    }
}

/// The operation is a subscription whose every root selection is a shareable field
/// without `after` (a subscription that resumes replays history of its own first),
/// and fragments at the root are not looked into: such a document runs on its own.
fn shareable(doc: &ExecutableDocument, name: Option<&str>) -> bool {
    let operation = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return false,
        },
        // One named operation, and no name asked for: that one runs.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().expect("one operation")
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    let operation = &operation.node;
    operation.ty == async_graphql::parser::types::OperationType::Subscription
        && operation.selection_set.node.items.iter().all(|item| {
            matches!(&item.node, Selection::Field(field)
                if SHAREABLE.contains(&field.node.name.node.as_str())
                    && field.node.get_argument("after").is_none())
        })
}

/// One answer of an upstream: the response, and its JSON, serialised once.
pub struct Answer {
    pub response: Response,
    pub json: String,
    /// The execution panicked on this event and starts again: an error for this
    /// event only, never the end of the subscription.
    pub panicked: bool,
    /// The event log cursor of the event behind it, when it has one.
    pub cursor: Option<String>,
    /// The only agent whose connections deliver it (an offer on `escalations`).
    pub audience: Option<String>,
}

/// A running upstream. Subscribers hold it; when the last lets go, it stops. Only
/// the upstream's task holds its sender, so when the execution ends, every
/// subscriber's stream ends too, and a newcomer starts a new execution.
struct Upstream {
    answers: broadcast::WeakSender<Arc<Answer>>,
    stop: CancellationToken,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What a shared execution is started again from after a panic.
struct Template {
    query: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    document: Option<ExecutableDocument>,
}

impl Template {
    fn of(request: &mut async_graphql::Request) -> Template {
        Template {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            document: request.parsed_query().ok().cloned(),
        }
    }

    /// A new request of this operation, parsed already.
    fn request(&self) -> async_graphql::Request {
        let mut request =
            async_graphql::Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        if let Some(document) = &self.document {
            request.set_parsed_query(document.clone());
        }
        request
    }
}

/// The upstreams running, by key.
#[derive(Default)]
pub struct SharedOperations(Mutex<HashMap<Key, Weak<Upstream>>>);

/// What a subscriber of an upstream receives: a shared answer, or its own error
/// when it fell behind.
pub enum Item {
    Shared(Arc<Answer>),
    Own(Box<Response>),
}

impl SharedOperations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Weak<Upstream>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribe to the upstream of `key`, starting it with `request` if none runs
    /// (then `context` readies a copy of it, should the execution start again).
    /// `me` is the subscribing agent: answers meant for another agent alone pass
    /// it by.
    pub fn subscribe(
        hub: &Hub,
        key: Key,
        me: Option<String>,
        mut request: async_graphql::Request,
        context: impl Fn(async_graphql::Request) -> async_graphql::Request + Send + Sync + 'static,
    ) -> impl Stream<Item = Item> + Send + 'static {
        let context = Arc::new(context);
        // How this subscriber goes on alone, should it fall behind.
        let takeover = Takeover {
            schema: hub.api().schema().clone(),
            template: Template::of(&mut request),
            context: Arc::clone(&context) as Arc<Context>,
        };
        let (upstream, answers) = {
            let mut running = hub.operations().lock();
            let joined = running
                .get(&key)
                .and_then(Weak::upgrade)
                .and_then(|upstream| {
                    let answers = upstream.answers.upgrade()?.subscribe();
                    Some((upstream, answers))
                });
            match joined {
                Some(joined) => joined,
                None => {
                    let (sender, answers) = broadcast::channel(CAPACITY);
                    let upstream = Arc::new(Upstream {
                        answers: sender.downgrade(),
                        stop: CancellationToken::new(),
                    });
                    running.retain(|_, weak| weak.strong_count() > 0);
                    running.insert(key, Arc::downgrade(&upstream));
                    let stop = upstream.stop.clone();
                    let max = hub.core().config.limits.max_response_bytes;
                    let schema = hub.api().schema().clone();
                    let template = Template::of(&mut request);
                    let again = move || context(template.request());
                    hub.core()
                        .tasks
                        .spawn(run(schema, request, again, sender, stop, max));
                    (upstream, answers)
                }
            }
        };
        follow(upstream, answers, takeover, me)
    }
}

/// How a connection readies a request of its own (its principal, its address).
type Context = dyn Fn(async_graphql::Request) -> async_graphql::Request + Send + Sync;

/// What a subscriber needs to leave its upstream for an execution of its own.
struct Takeover {
    schema: AppSchema,
    template: Template,
    context: Arc<Context>,
}

/// Execute once, serialise once, hand to every subscriber. A panic while resolving
/// an event sends every subscriber an `INTERNAL` error for that event, and the
/// execution starts again, so they go on.
async fn run(
    schema: AppSchema,
    first: async_graphql::Request,
    again: impl Fn() -> async_graphql::Request + Send + 'static,
    answers: broadcast::Sender<Arc<Answer>>,
    stop: CancellationToken,
    max_bytes: usize,
) {
    let mut request = Some(first);
    let note = CursorNote::default();
    // The cursor of the last event answered (the one that panicked included): a
    // restarted execution goes on after it, neither skipping what came meanwhile
    // nor meeting that event again.
    let mut last: Option<String> = None;
    loop {
        let request = match request.take() {
            Some(first) => first,
            None => match last.clone() {
                Some(cursor) => again().data(ResumeAfter(cursor)),
                None => again(),
            },
        }
        .data(note.clone());
        let mut stream = AssertUnwindSafe(schema.execute_stream(request)).catch_unwind();
        loop {
            let response = tokio::select! {
                () = stop.cancelled() => return,
                response = stream.next() => response,
            };
            let (mut response, panicked) = match response {
                None => return,
                Some(Ok(response)) => (response, false),
                Some(Err(_)) => (crate::graphql::response::panicked(), true),
            };
            crate::graphql::response::ensure_codes(&mut response.errors);
            let json = crate::graphql::response::serialise_response(max_bytes, &response);
            let Noted { cursor, audience } = note.take();
            if cursor.is_some() {
                last.clone_from(&cursor);
            }
            let answer = Answer {
                response,
                json,
                panicked,
                cursor,
                audience,
            };
            if answers.send(Arc::new(answer)).is_err() {
                return;
            }
            if panicked {
                break;
            }
        }
    }
}

/// A subscriber's view of an upstream; holding it keeps the upstream running.
fn follow(
    upstream: Arc<Upstream>,
    mut answers: broadcast::Receiver<Arc<Answer>>,
    takeover: Takeover,
    me: Option<String>,
) -> impl Stream<Item = Item> + Send + 'static {
    async_stream::stream! {
        let mut upstream = Some(upstream);
        let mut last: Option<String> = None;
        loop {
            match answers.recv().await {
                Ok(answer) => {
                    if let Some(cursor) = &answer.cursor {
                        last = Some(cursor.clone());
                    }
                    if answer.audience.is_some() && answer.audience != me {
                        continue;
                    }
                    yield Item::Shared(answer);
                }
                Err(broadcast::error::RecvError::Lagged(_)) if last.is_some() => {
                    // Fell behind: go on alone, from the last answer's event.
                    upstream.take();
                    let after = ResumeAfter(last.take().unwrap_or_default());
                    let request = (takeover.context)(takeover.template.request()).data(after);
                    let mut own = AssertUnwindSafe(takeover.schema.execute_stream(request)).catch_unwind();
                    while let Some(response) = own.next().await {
                        let mut response = response.unwrap_or_else(|_| crate::graphql::response::panicked());
                        crate::graphql::response::ensure_codes(&mut response.errors);
                        yield Item::Own(Box::new(response));
                    }
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let err = AppError::Lagged(format!(
                        "this subscriber fell behind and missed {missed} events: refetch what you show"
                    ));
                    let error = async_graphql::Error::from(err).into_server_error(Default::default());
                    let mut response = Response::from_errors(vec![error]);
                    crate::graphql::response::ensure_codes(&mut response.errors);
                    yield Item::Own(Box::new(response));
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid query")
    }

    #[test]
    fn only_subscriptions_of_shareable_fields_are_shared() {
        assert!(shareable(&doc("subscription { escalations { id } }"), None));
        assert!(shareable(
            &doc("subscription S($t: [ID!]) { escalations(teamIds: $t) { id } inbox { kind } }"),
            None
        ));
        // History first: every subscriber has its own.
        assert!(!shareable(
            &doc("subscription { messages(conversationId: \"c\") { seq } }"),
            None
        ));
        assert!(!shareable(
            &doc("subscription($a: String) { inbox(after: $a) { kind cursor } }"),
            None
        ));
        assert!(!shareable(&doc("query { viewer { id } }"), None));
        assert!(!shareable(
            &doc("subscription { ...F } fragment F on Subscription { escalations { id } }"),
            None
        ));
        let two = doc(
            "subscription A { inbox { kind } } subscription B { messages(conversationId: \"c\") { seq } }",
        );
        assert!(shareable(&two, Some("A")));
        assert!(!shareable(&two, Some("B")));
        assert!(!shareable(&two, None));
        let named = doc("subscription Escalations { escalations { id } }");
        assert!(shareable(&named, None));
    }
}
