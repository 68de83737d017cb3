//! The demo workspace (`casefile serve --demo`, `casefile demo seed`): a
//! content-management product's help center, tags routed to two teams, lead fields,
//! an owner and two agents. Created once, with a random password for every demo
//! account that is printed that once (a demo reachable from elsewhere must not open
//! with a password everyone knows); later runs reuse it and issue fresh tokens.

use std::fmt::Write as _;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::auth::AgentPrincipal;
use crate::domain::Core;
use crate::domain::chat::leads::LeadFieldDefinition;
use crate::domain::handoff::hours::IntervalInput;
use crate::domain::knowledge::articles::{ArticleInput, parse_file};
use crate::domain::knowledge::tags::TagInput;
use crate::domain::tenancy::agents::NewAgent;
use crate::domain::{self};
use crate::entity::{LeadFieldType, Role, TeamRouting, Weekday, agent, setting, workspace};
use crate::error::{AppError, AppResult};

const WORKSPACE: &str = "Inkwell CMS (demo)";
const OWNER_EMAIL: &str = "admin@inkwell.example";
/// The setting that remembers the demo workspace.
pub const SETTING: &str = "demo_workspace_id";

const DOCS: &[(&str, &str)] = &[
    (
        "custom-post-types.md",
        include_str!("demo/docs/custom-post-types.md"),
    ),
    (
        "publishing-workflows.md",
        include_str!("demo/docs/publishing-workflows.md"),
    ),
    (
        "scheduling-drafts.md",
        include_str!("demo/docs/scheduling-drafts.md"),
    ),
    (
        "media-library-uploads.md",
        include_str!("demo/docs/media-library-uploads.md"),
    ),
    (
        "media-library-organizing.md",
        include_str!("demo/docs/media-library-organizing.md"),
    ),
    (
        "revisions-and-versioning.md",
        include_str!("demo/docs/revisions-and-versioning.md"),
    ),
    (
        "roles-and-permissions.md",
        include_str!("demo/docs/roles-and-permissions.md"),
    ),
    (
        "inviting-users.md",
        include_str!("demo/docs/inviting-users.md"),
    ),
    (
        "preview-links.md",
        include_str!("demo/docs/preview-links.md"),
    ),
    ("seo-settings.md", include_str!("demo/docs/seo-settings.md")),
    (
        "navigation-menus.md",
        include_str!("demo/docs/navigation-menus.md"),
    ),
    (
        "multilingual-content.md",
        include_str!("demo/docs/multilingual-content.md"),
    ),
    ("webhooks.md", include_str!("demo/docs/webhooks.md")),
    (
        "content-api-tokens.md",
        include_str!("demo/docs/content-api-tokens.md"),
    ),
    (
        "import-export.md",
        include_str!("demo/docs/import-export.md"),
    ),
    (
        "comments-moderation.md",
        include_str!("demo/docs/comments-moderation.md"),
    ),
    (
        "backups-and-restore.md",
        include_str!("demo/docs/backups-and-restore.md"),
    ),
    (
        "billing-and-plans.md",
        include_str!("demo/docs/billing-and-plans.md"),
    ),
];

/// Who the demo agents are: name, email, team.
const AGENTS: &[(&str, &str, &str)] = &[
    ("Alex Rivera", "alex@inkwell.example", "Content Support"),
    ("Sam Chen", "sam@inkwell.example", "Accounts & Billing"),
];

/// Topic tags: label, keywords, team, escalate, priority.
const TAGS: &[(&str, &[&str], &str, bool, i32)] = &[
    (
        "Media library uploads",
        &["upload", "media library", "image", "file size", "svg"],
        "Content Support",
        false,
        2,
    ),
    (
        "Versioning confusion",
        &["revision", "version", "restore", "rollback", "history"],
        "Content Support",
        false,
        2,
    ),
    (
        "Publishing workflow",
        &["workflow", "approval", "review", "publish", "schedule"],
        "Content Support",
        false,
        1,
    ),
    (
        "Custom post types",
        &[
            "custom post type",
            "post type",
            "custom field",
            "content model",
        ],
        "Content Support",
        false,
        1,
    ),
    (
        "Billing",
        &["invoice", "billing", "refund", "payment", "vat", "plan"],
        "Accounts & Billing",
        true,
        10,
    ),
    (
        "Account access",
        &[
            "login",
            "password",
            "locked out",
            "sso",
            "2fa",
            "invitation",
        ],
        "Accounts & Billing",
        false,
        5,
    ),
];

/// The demo workspace and fresh tokens for its people.
pub struct Demo {
    pub workspace: workspace::Model,
    /// The password of every demo account, when this run created them.
    pub password: Option<String>,
    /// (name, email, role, team, token)
    pub people: Vec<(String, String, Role, Option<String>, String)>,
}

impl Demo {
    /// What `--demo` prints: where to go and how to sign in.
    pub fn describe(&self, base_url: &str, pages: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Casefile demo workspace \"{}\" ({})",
            self.workspace.name, self.workspace.id
        );
        if pages {
            let _ = writeln!(out, "  chat widget:  {base_url}/demo/widget");
            let _ = writeln!(out, "  agent inbox:  {base_url}/demo/inbox");
        }
        let _ = writeln!(out, "  GraphiQL:     {base_url}/graphql");
        let _ = writeln!(out, "  widget key:   {}", self.workspace.widget_key);
        match &self.password {
            Some(password) => {
                let _ = writeln!(
                    out,
                    "  password of every demo account (shown this once): {password}"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  the demo accounts keep the password printed when they were created"
                );
            }
        }
        for (name, email, role, team, token) in &self.people {
            let team = team
                .as_deref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {name} <{email}> ({role:?}{team})\n    token: {token}"
            );
        }
        out
    }
}

/// Create the demo workspace if absent; issue fresh tokens either way.
pub async fn seed(core: &Core) -> AppResult<Demo> {
    let existing = match setting::Entity::find_by_id(SETTING)
        .one(&core.db.writer)
        .await?
    {
        Some(row) => {
            workspace::Entity::find_by_id(row.value)
                .one(&core.db.writer)
                .await?
        }
        None => None,
    };
    let (workspace, password) = match existing {
        Some(workspace) => (workspace, None),
        None => {
            let password = crate::ids::random_secret(12);
            (create(core, &password).await?, Some(password))
        }
    };
    let agents = agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace.id.as_str()))
        .all(&core.db.writer)
        .await?;
    let mut people = Vec::new();
    for agent in agents {
        let token = core
            .tokens
            .issue_agent(&agent.id, &workspace.id, agent.role, agent.token_generation)?
            .token;
        let team = AGENTS
            .iter()
            .find(|(_, email, _)| *email == agent.email)
            .map(|(_, _, t)| (*t).to_owned());
        people.push((agent.name, agent.email, agent.role, team, token));
    }
    Ok(Demo {
        workspace,
        password,
        people,
    })
}

async fn create(core: &Core, password: &str) -> AppResult<workspace::Model> {
    let created = domain::tenancy::workspaces::create(
        core,
        WORKSPACE,
        OWNER_EMAIL,
        password,
        Some("Morgan Lee"),
    )
    .await?;
    let admin = AgentPrincipal {
        agent_id: created.admin_id.clone(),
        workspace_id: created.workspace_id.clone(),
        role: Role::Owner,
        generation: 0,
        expires_at: i64::MAX,
    };
    // The seed acts as the owner, from this machine (so the audit log says).
    let here = std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
    let mut teams = Vec::new();
    for name in ["Content Support", "Accounts & Billing"] {
        teams.push(domain::tenancy::teams::create(core, &admin, here, name, &[]).await?);
    }
    // Content Support offers each handoff to its next available agent in turn.
    if let Some(content) = teams.iter_mut().find(|t| t.name == "Content Support") {
        let change = domain::tenancy::teams::TeamUpdate {
            name: None,
            business_hours: None,
            routing: Some(TeamRouting::RoundRobin),
            offer_timeout_seconds: None,
            accept_target_seconds: Some(Some(5 * 60)),
        };
        *content =
            domain::tenancy::teams::update(core, &admin, here, &content.id.clone(), change).await?;
    }
    // Billing answers on weekdays, Berlin office hours, round robin too: a handoff
    // to it at night shows the visitor when the team is back, and is offered when
    // the team opens.
    if let Some(billing) = teams.iter_mut().find(|t| t.name == "Accounts & Billing") {
        let weekdays = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ]
        .map(|weekday| IntervalInput {
            weekday,
            opens: "09:00",
            closes: "17:30",
        });
        let hours = domain::handoff::hours::check("Europe/Berlin", &weekdays, &[])?;
        let change = domain::tenancy::teams::TeamUpdate {
            name: None,
            business_hours: Some(Some(hours)),
            routing: Some(TeamRouting::RoundRobin),
            offer_timeout_seconds: None,
            accept_target_seconds: Some(Some(15 * 60)),
        };
        *billing =
            domain::tenancy::teams::update(core, &admin, here, &billing.id.clone(), change).await?;
    }
    let team_id = |name: &str| teams.iter().find(|t| t.name == name).map(|t| t.id.clone());
    for (name, email, team) in AGENTS {
        let team_ids: Vec<String> = team_id(team).into_iter().collect();
        let new = NewAgent {
            email,
            name,
            password,
            role: Role::Agent,
            team_ids: &team_ids,
        };
        domain::tenancy::agents::create(core, &admin, here, new).await?;
    }
    for (label, keywords, team, escalate, priority) in TAGS {
        let input = TagInput {
            label: Some((*label).to_owned()),
            keywords: Some(keywords.iter().map(|k| (*k).to_owned()).collect()),
            team_id: Some(team_id(team)),
            escalate: Some(*escalate),
            priority: Some(*priority),
            ..TagInput::default()
        };
        domain::knowledge::tags::create(core, &admin, here, &input).await?;
    }
    let fields: [(&str, &str, LeadFieldType, &[&str]); 4] = [
        (
            "cms",
            "Which CMS do you use?",
            LeadFieldType::Select,
            &[
                "Inkwell",
                "WordPress",
                "Drupal",
                "Ghost",
                "Contentful",
                "Strapi",
                "Other",
            ],
        ),
        ("cmsVersion", "CMS version", LeadFieldType::Text, &[]),
        (
            "role",
            "Your role",
            LeadFieldType::Select,
            &["Writer", "Editor", "Developer", "Admin", "Marketer"],
        ),
        ("pageUrl", "Page you were on", LeadFieldType::Url, &[]),
    ];
    for (key, label, kind, options) in fields {
        let options: Vec<String> = options.iter().map(|o| (*o).to_owned()).collect();
        let def = LeadFieldDefinition {
            key,
            label,
            kind,
            options: &options,
            required: false,
        };
        domain::chat::leads::define_field(core, &admin, here, def).await?;
    }
    for (name, content) in DOCS {
        let parsed = parse_file(name, content);
        let url = parsed
            .url
            .clone()
            .ok_or_else(|| AppError::internal(format!("{name} has no url")))?;
        let input = ArticleInput {
            id: None,
            title: &parsed.title,
            url: &url,
            body: &parsed.body,
        };
        domain::knowledge::articles::upsert(core, &created.workspace_id, input, None).await?;
    }
    let change = domain::tenancy::workspaces::WorkspaceChange {
        default_team_id: team_id("Content Support"),
        ..Default::default()
    };
    let workspace = domain::tenancy::workspaces::update(core, &admin, here, change).await?;
    core.db.setting_or_insert(SETTING, &workspace.id).await?;
    Ok(workspace)
}
