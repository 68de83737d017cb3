//! Seeding a casefile database in bulk, straight into its tables, for the scenarios
//! that need more data than the API can create in the time they have (100,000
//! conversations for I1) or accounts without the cost of hashing their passwords
//! (the agents of Q0, Q1, M1, H1).
//!
//! The rows are what casefile itself would have written: prefixed, time-ordered ids
//! (ULIDs of the row's own time), the stored enum spellings, JSON columns as
//! casefile writes them, every foreign key satisfied. They go in with multi-row
//! `INSERT`s inside transactions (one per chunk of conversations), through
//! casefile's own `Db` (so the same SQL works on SQLite and PostgreSQL), while the
//! casefile child serves the same database. Tokens for the seeded agents and
//! visitors are issued with the children's signing secret
//! ([`crate::common::BENCH_JWT_SECRET`]). Everything is generated from a fixed seed,
//! so every run seeds the same shapes.

use anyhow::Context as _;
use casefile::db::Db;
use casefile::db::stmt;
use casefile::entity::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait, Value};

use crate::common::bench_tokens;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Most bound values in one statement (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_VALUES: usize = 30_000;
/// Most rows in one `INSERT`.
const MAX_ROWS: usize = 500;
/// Conversations per transaction.
const CHUNK: usize = 2_000;

/// A topic: label, keywords, the team (index into [`TEAMS`]) it routes to, and
/// visitor questions about it.
type Topic = (
    &'static str,
    &'static [&'static str],
    Option<usize>,
    &'static [&'static str],
);

const TOPICS: &[Topic] = &[
    (
        "Scheduling",
        &["schedule", "scheduled"],
        Some(0),
        &[
            "How do I schedule a draft for next Monday?",
            "Can I schedule posts in another time zone?",
            "Why did my scheduled post not go live?",
            "Scheduled post published at the wrong time",
        ],
    ),
    (
        "Media library",
        &["upload", "image", "video"],
        Some(0),
        &[
            "How do I upload a video to the media library?",
            "Image upload fails for large files",
            "Where are the images I uploaded last week?",
        ],
    ),
    (
        "Billing",
        &["invoice", "charged", "billing"],
        Some(1),
        &[
            "Why was I charged twice this month?",
            "How do I download an invoice?",
            "Can I switch to yearly billing?",
        ],
    ),
    (
        "Refunds",
        &["refund"],
        Some(1),
        &[
            "I would like a refund for my last payment",
            "How long does a refund take?",
        ],
    ),
    (
        "SSO login",
        &["sso", "saml", "okta"],
        Some(1),
        &[
            "SAML login keeps failing for our team",
            "How do I set up single sign-on with Okta?",
        ],
    ),
    (
        "Password reset",
        &["password"],
        Some(1),
        &[
            "I never got the password reset email",
            "How do I reset my password?",
        ],
    ),
    (
        "Integrations",
        &["salesforce", "slack", "integrate"],
        Some(2),
        &[
            "Does Inkwell integrate with Salesforce?",
            "Salesforce integration?",
            "How do I send notifications to Slack?",
        ],
    ),
    (
        "API",
        &["api", "webhook"],
        Some(2),
        &[
            "What is the rate limit of the API?",
            "The API answers 401 with my key",
            "Webhooks stopped arriving yesterday",
        ],
    ),
    (
        "Permissions",
        &["permission", "role", "editor"],
        Some(0),
        &[
            "How do I let an editor publish posts?",
            "A contributor can see drafts they should not see",
        ],
    ),
    (
        "Export",
        &["export", "csv"],
        None,
        &[
            "How do I export all posts to CSV?",
            "Export of my site stops halfway",
        ],
    ),
    (
        "Performance",
        &["slow", "performance"],
        None,
        &[
            "The editor is very slow with long posts",
            "Pages take ten seconds to load since the update",
        ],
    ),
    (
        "Cancellation",
        &["cancel"],
        Some(1),
        &[
            "How do I cancel my subscription?",
            "Cancel my plan at the end of the month",
        ],
    ),
];

pub const TEAMS: &[&str] = &["Content Support", "Accounts & Billing", "Integrations"];

const FIRST_NAMES: &[&str] = &[
    "Alex", "Sam", "Robin", "Jordan", "Kim", "Noor", "Lena", "Marco", "Priya", "Tomás", "Yuki",
    "Ada", "Omar", "Ines", "Felix", "Zoe",
];

/// What kind of conversations to seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A month of history: AI-resolved, open with the AI, handed off (requested,
    /// accepted, resolved, cancelled), tags, ratings, leads, AI answers with
    /// confidences. For insights.
    History,
    /// What an agent inbox shows: every conversation with a lead, an assignee,
    /// tags, a last message and an open handoff (requested or accepted), updated in
    /// the last two days.
    Inbox,
    /// Conversations the AI is handling right now (a question and an answer), that
    /// a visitor may escalate.
    Waiting,
}

pub struct Agent {
    pub id: String,
    pub name: String,
    pub token: String,
}

pub struct Tag {
    pub id: String,
    pub team_id: Option<String>,
}

/// Teams, agents and topic tags of a workspace.
pub struct Catalog {
    pub teams: Vec<String>,
    pub agents: Vec<Agent>,
    pub tags: Vec<Tag>,
}

/// A seeded conversation and its visitor.
pub struct Conversation {
    pub id: String,
    pub visitor_id: String,
}

/// How many rows of each kind were seeded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub conversations: usize,
    pub messages: usize,
    pub handoffs: usize,
    pub tags: usize,
    pub ratings: usize,
    pub leads: usize,
}

impl Counts {
    pub fn describe(&self) -> String {
        format!(
            "{} conversations, {} messages, {} handoffs, {} applied tags, {} ratings, {} leads",
            self.conversations, self.messages, self.handoffs, self.tags, self.ratings, self.leads
        )
    }
}

pub struct Seeder {
    pub db: Db,
    pub workspace_id: String,
    tokens: casefile::auth::Tokens,
    rng: StdRng,
    /// "Now" of the seeded history, ms since the epoch.
    pub now: i64,
}

fn text(s: impl Into<String>) -> Value {
    Value::from(s.into())
}

fn opt_text(s: Option<String>) -> Value {
    Value::from(s)
}

fn ulid_id(prefix: &str, at_ms: i64, rng: &mut StdRng) -> String {
    let ulid = ulid::Ulid::from_parts(at_ms.max(0) as u64, rng.r#gen::<u128>());
    format!("{prefix}_{ulid}")
}

/// Rows of one table, flushed in multi-row `INSERT`s.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Value>>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str]) -> Table {
        Table {
            name,
            columns,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    async fn flush<C: ConnectionTrait>(&mut self, conn: &C) -> anyhow::Result<usize> {
        let backend = conn.get_database_backend();
        let per = (MAX_VALUES / self.columns.len()).clamp(1, MAX_ROWS);
        let total = self.rows.len();
        let placeholders = format!("({})", vec!["?"; self.columns.len()].join(", "));
        let rows = std::mem::take(&mut self.rows);
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Vec<Value>> = rows.by_ref().take(per).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.name,
                self.columns.join(", "),
                vec![placeholders.as_str(); batch.len()].join(", ")
            );
            let values: Vec<Value> = batch.into_iter().flatten().collect();
            conn.execute_raw(stmt(backend, &sql, values))
                .await
                .with_context(|| format!("seeding {}", self.name))?;
        }
        Ok(total)
    }
}

const CONVERSATION_COLUMNS: &[&str] = &[
    "id",
    "workspace_id",
    "lead_id",
    "visitor_id",
    "status",
    "assignee_id",
    "team_id",
    "context",
    "last_seq",
    "ai_boundary_seq",
    "created_at",
    "updated_at",
];
const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "workspace_id",
    "conversation_id",
    "seq",
    "author",
    "agent_id",
    "body",
    "internal",
    "confidence",
    "sources",
    "client_message_id",
    "reply_to_seq",
    "created_at",
];
const HANDOFF_COLUMNS: &[&str] = &[
    "id",
    "workspace_id",
    "conversation_id",
    "reason",
    "status",
    "team_id",
    "accepted_by",
    "note",
    "trigger_seq",
    "requested_at",
    "accepted_at",
    "resolved_at",
    "cancelled_at",
];
const TAG_COLUMNS: &[&str] = &[
    "conversation_id",
    "tag_id",
    "workspace_id",
    "source",
    "evidence",
    "confidence",
    "message_id",
    "applied_by",
    "applied_at",
    "removed_at",
];
const RATING_COLUMNS: &[&str] = &[
    "conversation_id",
    "workspace_id",
    "score",
    "comment",
    "created_at",
];
const LEAD_COLUMNS: &[&str] = &[
    "id",
    "workspace_id",
    "visitor_id",
    "name",
    "email",
    "company",
    "fields",
    "created_at",
    "updated_at",
];

/// The rows of a chunk of conversations, inserted parents first.
struct Chunk {
    leads: Table,
    conversations: Table,
    messages: Table,
    handoffs: Table,
    tags: Table,
    ratings: Table,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            leads: Table::new("leads", LEAD_COLUMNS),
            conversations: Table::new("conversations", CONVERSATION_COLUMNS),
            messages: Table::new("messages", MESSAGE_COLUMNS),
            handoffs: Table::new("handoffs", HANDOFF_COLUMNS),
            tags: Table::new("conversation_tags", TAG_COLUMNS),
            ratings: Table::new("conversation_ratings", RATING_COLUMNS),
        }
    }

    async fn flush(&mut self, db: &Db, counts: &mut Counts) -> anyhow::Result<()> {
        let txn = db.writer.begin().await?;
        counts.leads += self.leads.flush(&txn).await?;
        counts.conversations += self.conversations.flush(&txn).await?;
        counts.messages += self.messages.flush(&txn).await?;
        counts.handoffs += self.handoffs.flush(&txn).await?;
        counts.tags += self.tags.flush(&txn).await?;
        counts.ratings += self.ratings.flush(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// One conversation being written: its messages so far.
struct Thread<'a> {
    ws: &'a str,
    id: String,
    seq: i64,
    last_at: i64,
    first_message: Option<String>,
}

impl Thread<'_> {
    #[allow(clippy::too_many_arguments)]
    fn say(
        &mut self,
        chunk: &mut Chunk,
        rng: &mut StdRng,
        author: &str,
        agent: Option<&str>,
        body: String,
        at: i64,
        confidence: Option<f64>,
        sources: String,
        reply_to: Option<i64>,
    ) {
        self.seq += 1;
        self.last_at = self.last_at.max(at);
        let id = ulid_id("msg", at, rng);
        if self.first_message.is_none() {
            self.first_message = Some(id.clone());
        }
        chunk.messages.push(vec![
            text(id),
            text(self.ws),
            text(self.id.as_str()),
            self.seq.into(),
            text(author),
            opt_text(agent.map(str::to_owned)),
            text(body),
            false.into(),
            confidence.into(),
            text(sources),
            Option::<String>::None.into(),
            reply_to.into(),
            at.into(),
        ]);
    }
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One of `weights.len()` choices, by weight.
fn weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

impl Seeder {
    /// Connect to the database of a running casefile child, to seed its workspace.
    pub async fn connect(url: &str, workspace_id: &str) -> anyhow::Result<Seeder> {
        let db = tokio::time::timeout(crate::common::STEP_TIMEOUT, Db::connect(url, 2))
            .await
            .context("connecting the seeder timed out")?
            .map_err(|err| anyhow::anyhow!("connecting the seeder: {}", err.message()))?;
        Ok(Seeder {
            db,
            workspace_id: workspace_id.to_owned(),
            tokens: bench_tokens(),
            rng: StdRng::seed_from_u64(0x5eed_ca5e),
            now: chrono::Utc::now().timestamp_millis(),
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.backend()
    }

    /// A token for a seeded agent.
    pub fn agent_token(&self, agent_id: &str, role: Role) -> anyhow::Result<String> {
        Ok(self
            .tokens
            .issue_agent(agent_id, &self.workspace_id, role, 0)
            .map_err(|err| anyhow::anyhow!("issuing a token: {}", err.message()))?
            .token)
    }

    /// `teams` teams (of [`TEAMS`], cycled), `agents` agents (role `AGENT`, each in
    /// one or two teams) and one tag per topic (up to `tags`), routed to teams.
    pub async fn catalog(
        &mut self,
        teams: usize,
        agents: usize,
        tags: usize,
    ) -> anyhow::Result<Catalog> {
        let ws = self.workspace_id.clone();
        let at = self.now - 40 * DAY;
        let txn = self.db.writer.begin().await?;
        let mut team_rows = Table::new("teams", &["id", "workspace_id", "name", "created_at"]);
        let mut team_ids = Vec::new();
        for i in 0..teams {
            let id = ulid_id("team", at, &mut self.rng);
            let name = if i < TEAMS.len() {
                TEAMS[i].to_owned()
            } else {
                format!("{} {}", TEAMS[i % TEAMS.len()], i / TEAMS.len() + 1)
            };
            team_rows.push(vec![
                text(id.as_str()),
                text(ws.as_str()),
                text(name),
                at.into(),
            ]);
            team_ids.push(id);
        }
        team_rows.flush(&txn).await?;
        let mut agent_rows = Table::new(
            "agents",
            &[
                "id",
                "workspace_id",
                "email",
                "name",
                "password_hash",
                "role",
                "created_at",
            ],
        );
        let mut members = Table::new("team_members", &["team_id", "agent_id"]);
        let mut seeded = Vec::new();
        for i in 0..agents {
            let id = ulid_id("agt", at, &mut self.rng);
            let name = format!("{} {}", FIRST_NAMES[i % FIRST_NAMES.len()], i + 1);
            agent_rows.push(vec![
                text(id.as_str()),
                text(ws.as_str()),
                text(format!("agent-{i}-{}@bench.test", id.to_lowercase())),
                text(name.as_str()),
                // Seeded agents never sign in: the bench issues their tokens.
                text("$argon2id$v=19$m=19456,t=2,p=1$seeded$not-a-password"),
                text("AGENT"),
                at.into(),
            ]);
            if !team_ids.is_empty() {
                let first = i % team_ids.len();
                members.push(vec![text(team_ids[first].as_str()), text(id.as_str())]);
                let second = (i + 1) % team_ids.len();
                if i % 3 == 0 && second != first {
                    members.push(vec![text(team_ids[second].as_str()), text(id.as_str())]);
                }
            }
            let token = self.agent_token(&id, Role::Agent)?;
            seeded.push(Agent { id, name, token });
        }
        agent_rows.flush(&txn).await?;
        members.flush(&txn).await?;
        let mut tag_rows = Table::new(
            "insight_tags",
            &[
                "id",
                "workspace_id",
                "slug",
                "label",
                "description",
                "keywords",
                "patterns",
                "team_id",
                "escalate",
                "priority",
                "created_at",
                "updated_at",
                "article_ids",
            ],
        );
        let mut tag_list = Vec::new();
        for (i, (label, keywords, team, _)) in TOPICS.iter().take(tags).enumerate() {
            let id = ulid_id("tag", at, &mut self.rng);
            let team_id = team.and_then(|t| team_ids.get(t).cloned());
            tag_rows.push(vec![
                text(id.as_str()),
                text(ws.as_str()),
                text(casefile::domain::knowledge::tags::slugify(label)),
                text(*label),
                text(""),
                text(serde_json::to_string(keywords)?),
                text("[]"),
                opt_text(team_id.clone()),
                false.into(),
                ((i % 4) as i32).into(),
                at.into(),
                at.into(),
                text("[]"),
            ]);
            tag_list.push(Tag { id, team_id });
        }
        tag_rows.flush(&txn).await?;
        txn.commit().await?;
        Ok(Catalog {
            teams: team_ids,
            agents: seeded,
            tags: tag_list,
        })
    }

    /// Seed `n` conversations of `profile`, created over the `span_ms` before
    /// "now" (minus three hours, so that every event of the history is past).
    pub async fn conversations(
        &mut self,
        catalog: &Catalog,
        profile: Profile,
        n: usize,
        span_ms: i64,
    ) -> anyhow::Result<(Vec<Conversation>, Counts)> {
        anyhow::ensure!(
            !catalog.agents.is_empty() && !catalog.tags.is_empty(),
            "seeding conversations needs agents and tags"
        );
        let ws = self.workspace_id.clone();
        let mut counts = Counts::default();
        let mut out = Vec::with_capacity(n);
        let mut chunk = Chunk::new();
        let end = match profile {
            Profile::History => self.now - 3 * HOUR,
            Profile::Inbox => self.now - 10 * MINUTE,
            Profile::Waiting => self.now - MINUTE,
        };
        // Oldest first, as they would have been written: ids (and so the indexes
        // on them) grow in order.
        let mut starts: Vec<i64> = (0..n)
            .map(|_| end - self.rng.gen_range(0..span_ms.max(1)))
            .collect();
        starts.sort_unstable();
        if self.backend() == DbBackend::Sqlite {
            // This connection only: the history needs no durability, and the
            // indexes it fills fit in 256 MiB of cache.
            self.db
                .writer
                .execute_unprepared("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144")
                .await?;
        }
        // Bounded: `n` conversations, flushed every `CHUNK`.
        for (i, created) in starts.into_iter().enumerate() {
            let conversation = self.one(&ws, catalog, profile, created, &mut chunk)?;
            out.push(conversation);
            if (i + 1) % CHUNK == 0 {
                chunk.flush(&self.db, &mut counts).await?;
            }
        }
        chunk.flush(&self.db, &mut counts).await?;
        Ok((out, counts))
    }

    fn one(
        &mut self,
        ws: &str,
        catalog: &Catalog,
        profile: Profile,
        created: i64,
        chunk: &mut Chunk,
    ) -> anyhow::Result<Conversation> {
        let rng = &mut self.rng;
        let id = ulid_id("conv", created, rng);
        let visitor_id = format!("vis_{:016x}", rng.r#gen::<u64>());
        let topic = weighted(
            rng,
            &[14.0, 9.0, 12.0, 6.0, 5.0, 8.0, 7.0, 6.0, 5.0, 4.0, 4.0, 5.0],
        ) % catalog.tags.len().min(TOPICS.len());
        let (_, keywords, _, questions) = TOPICS[topic];
        let tag = &catalog.tags[topic];
        let team = tag
            .team_id
            .clone()
            .or_else(|| catalog.teams.first().cloned());

        // The lead.
        let with_lead = match profile {
            Profile::Inbox => true,
            Profile::History => rng.gen_bool(0.45),
            Profile::Waiting => rng.gen_bool(0.5),
        };
        let lead_id = if with_lead {
            let lead = ulid_id("lead", created, rng);
            let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
            let n: u32 = rng.gen_range(1..100_000);
            chunk.leads.push(vec![
                text(lead.as_str()),
                text(ws),
                text(visitor_id.as_str()),
                text(format!("{first} Visitor")),
                text(format!("{}.{n}@customer.test", first.to_lowercase())),
                if rng.gen_bool(0.6) {
                    text(format!("Customer {}", n % 500))
                } else {
                    Option::<String>::None.into()
                },
                text(r#"{"cms":"Inkwell","role":"editor"}"#),
                created.into(),
                created.into(),
            ]);
            Some(lead)
        } else {
            None
        };

        let mut thread = Thread {
            ws,
            id: id.clone(),
            seq: 0,
            last_at: created,
            first_message: None,
        };
        let question = questions[rng.gen_range(0..questions.len())];
        let question = match rng.gen_range(0..4) {
            0 => format!("Hi! {question}"),
            1 => format!("{question} Thanks"),
            _ => question.to_owned(),
        };
        thread.say(
            chunk,
            rng,
            "VISITOR",
            None,
            question,
            created,
            None,
            "[]".into(),
            None,
        );
        let mut t = created + rng.gen_range(2_000..30_000);
        let confidence = if rng.gen_bool(0.35) {
            rng.gen_range(0.08..0.5)
        } else {
            rng.gen_range(0.5..0.97)
        };
        let sources = format!(
            r#"[{{"articleId":"art_{:026}","title":"{} guide","url":"https://help.bench.test/{}","score":{:.2}}}]"#,
            topic, TOPICS[topic].0, keywords[0], confidence
        );
        thread.say(
            chunk,
            rng,
            "AI",
            None,
            format!(
                "Here is what the {} guide says: open Settings, then follow the steps.",
                TOPICS[topic].0
            ),
            t,
            Some(confidence),
            sources,
            Some(1),
        );

        // What became of it.
        let mut status = "AI";
        let mut assignee: Option<String> = None;
        let mut boundary = 0;
        let mut handed_off = false;
        let outcome = match profile {
            Profile::History => rng.r#gen::<f64>(),
            Profile::Inbox => 0.99,
            Profile::Waiting => 0.0,
        };
        if profile == Profile::Waiting {
            // The AI has it: nothing more.
        } else if outcome < 0.42 {
            t += rng.gen_range(20_000..300_000);
            if rng.gen_bool(0.7) {
                thread.say(
                    chunk,
                    rng,
                    "VISITOR",
                    None,
                    "Thanks, that solved it.".into(),
                    t,
                    None,
                    "[]".into(),
                    None,
                );
            }
            status = "RESOLVED";
            boundary = thread.seq;
        } else if outcome < 0.58 {
            status = "AI";
        } else {
            handed_off = true;
            let reasons = [
                "VISITOR_REQUESTED",
                "UNRESOLVED",
                "POLICY",
                "AGENT_TAKEOVER",
            ];
            let reason = if confidence < 0.5 && rng.gen_bool(0.6) {
                "LOW_CONFIDENCE"
            } else if profile == Profile::Inbox {
                reasons[rng.gen_range(0..2)]
            } else {
                reasons[weighted(rng, &[45.0, 20.0, 20.0, 15.0])]
            };
            t += rng.gen_range(10_000..120_000);
            match reason {
                "VISITOR_REQUESTED" => thread.say(
                    chunk,
                    rng,
                    "VISITOR",
                    None,
                    "Can I talk to a person please?".into(),
                    t,
                    None,
                    "[]".into(),
                    None,
                ),
                "UNRESOLVED" => {
                    thread.say(
                        chunk,
                        rng,
                        "VISITOR",
                        None,
                        "That did not help, it still fails.".into(),
                        t,
                        None,
                        "[]".into(),
                        None,
                    );
                    t += rng.gen_range(2_000..20_000);
                    let again = rng.gen_range(0.2..0.7);
                    let asked = thread.seq;
                    thread.say(
                        chunk,
                        rng,
                        "AI",
                        None,
                        "You could also try clearing the cache and retrying.".into(),
                        t,
                        Some(again),
                        "[]".into(),
                        Some(asked),
                    );
                    t += rng.gen_range(10_000..120_000);
                    thread.say(
                        chunk,
                        rng,
                        "VISITOR",
                        None,
                        "Still broken.".into(),
                        t,
                        None,
                        "[]".into(),
                        None,
                    );
                }
                _ => {}
            }
            let trigger = thread.seq;
            let requested = t + rng.gen_range(200..3_000);
            // Now and then an earlier handoff that went back to the AI.
            if profile == Profile::History && rng.gen_bool(0.05) {
                let early = created + rng.gen_range(1_000..5_000);
                chunk.handoffs.push(vec![
                    text(ulid_id("hof", early, rng)),
                    text(ws),
                    text(id.as_str()),
                    text("VISITOR_REQUESTED"),
                    text("CANCELLED"),
                    opt_text(team.clone()),
                    Option::<String>::None.into(),
                    Option::<String>::None.into(),
                    1i64.into(),
                    early.into(),
                    Option::<i64>::None.into(),
                    Option::<i64>::None.into(),
                    (early + rng.gen_range(MINUTE..10 * MINUTE))
                        .min(requested)
                        .into(),
                ]);
            }
            if reason != "AGENT_TAKEOVER" {
                thread.say(
                    chunk,
                    rng,
                    "SYSTEM",
                    None,
                    "A person from the team will join shortly.".into(),
                    requested,
                    None,
                    "[]".into(),
                    None,
                );
            }
            let accepted = match profile {
                Profile::Inbox => rng.gen_bool(0.67),
                _ => reason == "AGENT_TAKEOVER" || rng.gen_bool(0.9),
            };
            let agent = &catalog.agents[rng.gen_range(0..catalog.agents.len())];
            let (mut accepted_at, mut resolved_at, mut cancelled_at) = (None, None, None);
            let handoff_status;
            if accepted {
                let wait_s = if reason == "AGENT_TAKEOVER" {
                    0.0
                } else {
                    (90.0 * (1.2 * normal(rng)).exp()).clamp(3.0, 7_200.0)
                };
                let at = requested + (wait_s * 1000.0) as i64;
                accepted_at = Some(at);
                assignee = Some(agent.id.clone());
                thread.say(
                    chunk,
                    rng,
                    "SYSTEM",
                    None,
                    format!("{} joined the conversation.", agent.name),
                    at,
                    None,
                    "[]".into(),
                    None,
                );
                t = at + rng.gen_range(5_000..60_000);
                thread.say(
                    chunk,
                    rng,
                    "AGENT",
                    Some(&agent.id),
                    format!("Hi, I'm {}. Let me look into this for you.", agent.name),
                    t,
                    None,
                    "[]".into(),
                    None,
                );
                if rng.gen_bool(0.6) {
                    t += rng.gen_range(20_000..240_000);
                    thread.say(
                        chunk,
                        rng,
                        "VISITOR",
                        None,
                        "Great, thank you!".into(),
                        t,
                        None,
                        "[]".into(),
                        None,
                    );
                }
                if profile == Profile::History && rng.gen_bool(0.85) {
                    let done = at + rng.gen_range(2 * MINUTE..120 * MINUTE);
                    resolved_at = Some(done);
                    thread.last_at = thread.last_at.max(done);
                    status = "RESOLVED";
                    boundary = thread.seq;
                    handoff_status = "RESOLVED";
                } else {
                    status = "HUMAN";
                    handoff_status = "ACCEPTED";
                }
            } else if profile == Profile::History && rng.gen_bool(0.5) {
                let back = requested + rng.gen_range(5 * MINUTE..60 * MINUTE);
                cancelled_at = Some(back);
                thread.say(
                    chunk,
                    rng,
                    "SYSTEM",
                    None,
                    "You're chatting with the AI assistant again. Ask for a person at any time."
                        .into(),
                    back,
                    None,
                    "[]".into(),
                    None,
                );
                status = "AI";
                boundary = thread.seq;
                handoff_status = "CANCELLED";
            } else {
                status = "QUEUED";
                handoff_status = "REQUESTED";
                if profile == Profile::Inbox {
                    // Assigned by hand while it waits: an inbox row has an assignee.
                    assignee = Some(agent.id.clone());
                }
            }
            chunk.handoffs.push(vec![
                text(ulid_id("hof", requested, rng)),
                text(ws),
                text(id.as_str()),
                text(reason),
                text(handoff_status),
                opt_text(team.clone()),
                opt_text(accepted_at.map(|_| agent.id.clone())),
                Option::<String>::None.into(),
                trigger.into(),
                requested.into(),
                accepted_at.into(),
                resolved_at.into(),
                cancelled_at.into(),
            ]);
        }

        // Tags: the topic's, sometimes a second one; now and then removed.
        let first_message = thread.first_message.clone();
        let tagged = match profile {
            Profile::History => rng.gen_bool(0.8),
            _ => true,
        };
        if tagged {
            let removed = (profile == Profile::History && rng.gen_bool(0.04))
                .then(|| created + rng.gen_range(MINUTE..HOUR));
            chunk.tags.push(vec![
                text(id.as_str()),
                text(tag.id.as_str()),
                text(ws),
                text("AUTO"),
                opt_text(Some(format!("matched \"{}\"", keywords[0]))),
                rng.gen_range(0.6..1.0).into(),
                opt_text(first_message.clone()),
                Option::<String>::None.into(),
                (created + 500).into(),
                removed.into(),
            ]);
            if rng.gen_bool(0.2) {
                let other =
                    (topic + rng.gen_range(1..catalog.tags.len().max(2))) % catalog.tags.len();
                if other != topic {
                    let by_agent = handed_off && assignee.is_some();
                    chunk.tags.push(vec![
                        text(id.as_str()),
                        text(catalog.tags[other].id.as_str()),
                        text(ws),
                        text(if by_agent { "AGENT" } else { "AUTO" }),
                        if by_agent {
                            Option::<String>::None.into()
                        } else {
                            opt_text(Some("matched a pattern".to_owned()))
                        },
                        1.0f64.into(),
                        Option::<String>::None.into(),
                        opt_text(if by_agent { assignee.clone() } else { None }),
                        (created + 1_000).into(),
                        Option::<i64>::None.into(),
                    ]);
                }
            }
        }

        // A rating for some resolved conversations.
        if status == "RESOLVED" && rng.gen_bool(0.35) {
            let weights: &[f64] = if handed_off {
                &[8.0, 10.0, 20.0, 30.0, 32.0]
            } else {
                &[3.0, 5.0, 12.0, 35.0, 45.0]
            };
            let score = weighted(rng, weights) as i32 + 1;
            let comment = rng.gen_bool(0.3).then(|| {
                if score >= 4 {
                    "Quick and helpful"
                } else {
                    "Took too long"
                }
                .to_owned()
            });
            let at = thread.last_at + rng.gen_range(10_000..600_000);
            chunk.ratings.push(vec![
                text(id.as_str()),
                text(ws),
                score.into(),
                opt_text(comment),
                at.into(),
            ]);
        }

        chunk.conversations.push(vec![
            text(id.as_str()),
            text(ws),
            opt_text(lead_id),
            text(visitor_id.as_str()),
            text(status),
            opt_text(assignee),
            opt_text(team),
            text(r#"{"pageUrl":"https://customer.test/editor","cmsVersion":"4.2"}"#),
            thread.seq.into(),
            boundary.into(),
            created.into(),
            thread.last_at.into(),
        ]);
        Ok(Conversation { id, visitor_id })
    }

    /// A token for the visitor of a seeded conversation.
    pub fn visitor_token(&self, conversation: &Conversation) -> anyhow::Result<String> {
        Ok(self
            .tokens
            .issue_visitor(
                &conversation.visitor_id,
                &self.workspace_id,
                &conversation.id,
            )
            .map_err(|err| anyhow::anyhow!("issuing a token: {}", err.message()))?
            .token)
    }

    /// After seeding, the database as a server that has been running a while has
    /// it: on SQLite the write-ahead log moved into the database file (so reads do
    /// not wade through a log of the whole seeding); on PostgreSQL the planner's
    /// statistics updated (what autovacuum does after a bulk load).
    pub async fn settle(&self) -> anyhow::Result<()> {
        let sql = match self.backend() {
            DbBackend::Sqlite => "PRAGMA wal_checkpoint(TRUNCATE)",
            _ => "ANALYZE",
        };
        self.db
            .writer
            .execute_unprepared(sql)
            .await
            .with_context(|| format!("settling the seeded database ({sql})"))?;
        Ok(())
    }
}
