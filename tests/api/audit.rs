//! The audit log: every administrative act is recorded with who, what, which
//! object, the changed fields' names and the client's address; owners read it;
//! nothing removes an entry; a refused act records nothing.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};
use crate::webhooks::{CREATE, serve};

const LOG: &str = "query($first: Int!, $after: String, $actions: [AuditAction!], $actor: ID) {
    auditLog(first: $first, after: $after, actions: $actions, actorId: $actor) {
        pageInfo { hasNextPage endCursor }
        nodes { id action actorId actor { __typename id name } objectType objectId fields address createdAt }
    }
}";

/// The whole log of the workspace, newest first.
async fn log(app: &TestApp, token: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .data(Some(token), LOG, json!({ "first": 7, "after": after }))
            .await;
        let page = &page["auditLog"];
        entries.extend(page["nodes"].as_array().expect("nodes").iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return entries;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

/// The entry of `action`, the newest if several.
fn entry<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("{action} is in the log: {entries:#?}"))
}

#[tokio::test]
async fn every_administrative_act_is_recorded_with_who_what_and_where() {
    let app = serve(10, 60_000).await;
    let ws = app.workspace("Audited").await;
    let owner = ws.admin_token.as_str();
    let run = |query: &'static str, variables: Value| {
        let app = &app;
        async move { app.data(Some(owner), query, variables).await }
    };

    // Agents: created, changed, deactivated, reactivated; signing in, and failing to.
    let (agent, _) = app.agent(&ws, "Bo", "AGENT").await;
    run(
        "mutation($a: ID!) { updateAgent(input: { agentId: $a, role: ADMIN, maxConcurrent: 3 }) { id } }",
        json!({ "a": agent }),
    )
    .await;
    run(
        "mutation($a: ID!) { deactivateAgent(agentId: $a) { id } }",
        json!({ "a": agent }),
    )
    .await;
    run(
        "mutation($a: ID!) { reactivateAgent(agentId: $a) { id } }",
        json!({ "a": agent }),
    )
    .await;
    let wrong = app
        .gql(
            None,
            "mutation($e: String!) { signIn(email: $e, password: \"not-the-password\") { token } }",
            json!({ "e": ws.admin_email }),
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    let changed = run(
        "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"a new horse battery\") { token } }",
        json!({}),
    )
    .await;
    let owner_token = changed["changePassword"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let owner = owner_token.as_str();
    let run = |query: &'static str, variables: Value| {
        let app = &app;
        async move { app.data(Some(owner), query, variables).await }
    };

    // Teams, settings, the policy, secrets, keys, webhooks, lead fields, tags.
    let team = run(
        "mutation { createTeam(input: { name: \"Billing\" }) { id } }",
        json!({}),
    )
    .await["createTeam"]["id"]
        .clone();
    run(
        "mutation($t: ID!) { updateTeam(input: { teamId: $t, name: \"Accounts\", routing: ROUND_ROBIN }) { id } }",
        json!({ "t": team }),
    )
    .await;
    run(
        "mutation { updateWorkspace(input: { name: \"Audited Inc\", retentionDays: 365 }) { id } }",
        json!({}),
    )
    .await;
    run(
        "mutation { updateHandoffPolicy(input: { maxAiAttempts: 2 }) { maxAiAttempts } }",
        json!({}),
    )
    .await;
    let identity_secret =
        run("mutation { rotateIdentitySecret }", json!({})).await["rotateIdentitySecret"]
            .as_str()
            .expect("secret")
            .to_owned();
    let key = run(
        "mutation { createApiKey(name: \"exports\", scopes: [LEADS_READ, CONVERSATIONS_READ]) { secret apiKey { id } } }",
        json!({}),
    )
    .await["createApiKey"]
        .clone();
    let key_secret = key["secret"].as_str().expect("secret").to_owned();
    let key_id = key["apiKey"]["id"].as_str().expect("id").to_owned();
    let webhook = run(
        CREATE,
        json!({ "input": { "url": "http://127.0.0.1:9/hook", "eventTypes": ["MESSAGE_CREATED"] } }),
    )
    .await["createWebhook"]
        .clone();
    let webhook_id = webhook["webhook"]["id"].as_str().expect("id").to_owned();
    let mut secrets = vec![
        identity_secret,
        key_secret.clone(),
        webhook["secret"].as_str().expect("secret").to_owned(),
    ];
    run(
        "mutation($w: ID!) { updateWebhook(input: { webhookId: $w, enabled: false, description: \"paused\" }) { id } }",
        json!({ "w": webhook_id }),
    )
    .await;
    let rotated = run(
        "mutation($w: ID!) { rotateWebhookSecret(webhookId: $w) { secret } }",
        json!({ "w": webhook_id }),
    )
    .await;
    secrets.push(
        rotated["rotateWebhookSecret"]["secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    );
    run(
        "mutation($w: ID!) { deleteWebhook(webhookId: $w) }",
        json!({ "w": webhook_id }),
    )
    .await;
    run(
        "mutation { defineLeadField(input: { key: \"plan\", label: \"Plan\", type: TEXT }) { id } }",
        json!({}),
    )
    .await;
    let tag = run(
        "mutation { createTag(input: { label: \"Refunds\" }) { id } }",
        json!({}),
    )
    .await["createTag"]["id"]
        .clone();
    run(
        "mutation($t: ID!) { updateTag(id: $t, input: { keywords: [\"refund\"] }) { id } }",
        json!({ "t": tag }),
    )
    .await;
    run(
        "mutation($t: ID!) { deleteTag(id: $t) }",
        json!({ "t": tag }),
    )
    .await;

    // Exports, by the key; then the key is revoked.
    let csv = app
        .client
        .get(app.url("/export/leads.csv"))
        .bearer_auth(&key_secret)
        .send()
        .await
        .expect("export");
    assert!(csv.status().is_success());
    csv.text().await.expect("csv");
    let (conversation, visitor) = app.start_conversation(&ws, Some("hello")).await;
    let lead = app
        .data(
            Some(&visitor),
            "mutation($c: ID!) { captureLead(conversationId: $c, input: { email: \"kim@example.org\" }) { id } }",
            json!({ "c": conversation }),
        )
        .await["captureLead"]["id"]
        .clone();
    app.data(
        Some(&key_secret),
        "query($l: ID!) { exportContact(leadId: $l) }",
        json!({ "l": lead }),
    )
    .await;
    run(
        "mutation($k: ID!) { revokeApiKey(id: $k) { id } }",
        json!({ "k": key_id }),
    )
    .await;

    let entries = log(&app, owner).await;
    let text = serde_json::to_string(&entries).expect("json");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "no secret in the log");
    }
    for password in [
        "correct horse battery",
        "a new horse battery",
        "not-the-password",
    ] {
        assert!(!text.contains(password), "no password in the log");
    }
    for e in &entries {
        assert_eq!(e["address"], "127.0.0.1", "{e}");
    }
    let ws_owner = json!(ws.admin_id);
    let check = |action: &str, actor: &Value, object_type: &str, object: &Value, fields: Value| {
        let e = entry(&entries, action);
        assert_eq!(&e["actorId"], actor, "{action}: {e}");
        assert_eq!(e["objectType"], object_type, "{action}: {e}");
        assert_eq!(&e["objectId"], object, "{action}: {e}");
        assert_eq!(e["fields"], fields, "{action}: {e}");
    };
    let agent = json!(agent);
    check("AGENT_CREATED", &ws_owner, "Agent", &agent, json!([]));
    check(
        "AGENT_UPDATED",
        &ws_owner,
        "Agent",
        &agent,
        json!(["role", "maxConcurrent"]),
    );
    check("AGENT_DEACTIVATED", &ws_owner, "Agent", &agent, json!([]));
    check("AGENT_REACTIVATED", &ws_owner, "Agent", &agent, json!([]));
    check("SIGN_IN", &agent, "Agent", &agent, json!([]));
    check(
        "SIGN_IN_FAILED",
        &Value::Null,
        "Agent",
        &ws_owner,
        json!([]),
    );
    check(
        "PASSWORD_CHANGED",
        &ws_owner,
        "Agent",
        &ws_owner,
        json!(["password"]),
    );
    check("TEAM_CREATED", &ws_owner, "Team", &team, json!([]));
    check(
        "TEAM_UPDATED",
        &ws_owner,
        "Team",
        &team,
        json!(["name", "routing"]),
    );
    let workspace = json!(ws.id);
    check(
        "WORKSPACE_UPDATED",
        &ws_owner,
        "Workspace",
        &workspace,
        json!(["name", "retentionDays"]),
    );
    check(
        "HANDOFF_POLICY_UPDATED",
        &ws_owner,
        "Workspace",
        &workspace,
        json!(["maxAiAttempts"]),
    );
    check(
        "IDENTITY_SECRET_ROTATED",
        &ws_owner,
        "Workspace",
        &workspace,
        json!([]),
    );
    let key = json!(key_id);
    check(
        "API_KEY_CREATED",
        &ws_owner,
        "ApiKey",
        &key,
        json!(["scopes"]),
    );
    check("API_KEY_REVOKED", &ws_owner, "ApiKey", &key, json!([]));
    let webhook = json!(webhook_id);
    check(
        "WEBHOOK_CREATED",
        &ws_owner,
        "Webhook",
        &webhook,
        json!(["url", "eventTypes"]),
    );
    check(
        "WEBHOOK_UPDATED",
        &ws_owner,
        "Webhook",
        &webhook,
        json!(["description", "enabled"]),
    );
    check(
        "WEBHOOK_SECRET_ROTATED",
        &ws_owner,
        "Webhook",
        &webhook,
        json!([]),
    );
    check("WEBHOOK_DELETED", &ws_owner, "Webhook", &webhook, json!([]));
    check(
        "TAG_UPDATED",
        &ws_owner,
        "InsightTag",
        &tag,
        json!(["keywords"]),
    );
    check("TAG_DELETED", &ws_owner, "InsightTag", &tag, json!([]));
    check("DATA_EXPORTED", &key, "Lead", &Value::Null, json!([]));
    check("CONTACT_EXPORTED", &key, "Lead", &lead, json!([]));
    assert_eq!(
        entry(&entries, "LEAD_FIELD_DEFINED")["objectType"],
        "LeadField"
    );
    assert_eq!(entry(&entries, "TAG_CREATED")["objectId"], tag);
    // The actor is shown as what it is, and newest comes first.
    assert_eq!(
        entry(&entries, "API_KEY_REVOKED")["actor"]["__typename"],
        "Agent"
    );
    assert_eq!(
        entry(&entries, "CONTACT_EXPORTED")["actor"]["__typename"],
        "ApiKey"
    );
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    // Filters: by action, by actor.
    let by_key = app
        .data(Some(owner), LOG, json!({ "first": 50, "actor": key_id }))
        .await;
    let actions: Vec<&str> = by_key["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["CONTACT_EXPORTED", "DATA_EXPORTED"]);
    let sign_ins = app
        .data(
            Some(owner),
            LOG,
            json!({ "first": 50, "actions": ["SIGN_IN_FAILED"] }),
        )
        .await;
    assert_eq!(
        sign_ins["auditLog"]["nodes"]
            .as_array()
            .expect("nodes")
            .len(),
        1
    );
}

#[tokio::test]
async fn only_owners_read_it_nothing_removes_it_and_refused_acts_leave_no_entry() {
    let app = TestApp::spawn().await;
    let ws = app.workspace("Owners").await;
    let (_, admin) = app.agent(&ws, "Ada", "ADMIN").await;
    let (_, agent) = app.agent(&ws, "Al", "AGENT").await;
    let key = app
        .api_key(&ws, "LEADS_READ, CONVERSATIONS_READ, EVENTS_READ")
        .await;
    for token in [&admin, &agent, &key] {
        let refused = app.gql(Some(token), LOG, json!({ "first": 5 })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    }
    for first in [0, 101] {
        let refused = app
            .gql(Some(&ws.admin_token), LOG, json!({ "first": first }))
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    }
    // Another workspace's log is its own.
    let other = app.workspace("Elsewhere").await;
    let theirs = log(&app, &other.admin_token).await;
    assert!(theirs.iter().all(|e| e["objectId"] != json!(ws.id)));

    // A refused act records nothing: an admin may not create an owner.
    let before = log(&app, &ws.admin_token).await.len();
    let refused = app
        .gql(
            Some(&admin),
            "mutation { createAgent(input: { email: \"o2@example.org\", name: \"O2\", password: \"password-2\", role: OWNER }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    assert_eq!(log(&app, &ws.admin_token).await.len(), before);

    // No API removes an entry, and the database refuses to.
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema");
    let mutations = schema.split("type Mutation").nth(1).expect("mutations");
    let mutations = &mutations[..mutations.find("\n}").expect("end")];
    let names: Vec<&str> = mutations
        .lines()
        .filter(|line| line.starts_with('\t') && !line.starts_with("\t\t"))
        .filter_map(|line| line.trim().split(['(', ':']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('"'))
        .collect();
    assert!(names.contains(&"eraseContact"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|name| name.to_lowercase().contains("audit")),
        "no mutation touches the log: {names:?}"
    );
    let db = &app.running.state.db.writer;
    for statement in [
        "DELETE FROM audit_log",
        "UPDATE audit_log SET address = NULL",
    ] {
        let err = db
            .execute_unprepared(statement)
            .await
            .expect_err("the audit log is append-only");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
