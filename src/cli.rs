//! The commands besides `serve`: `migrate`, `schema`, `workspace create`.

use crate::config::{Command, Config, WorkspaceCommand};
use crate::domain::workspaces::{self, CreatedWorkspace};
use crate::state::AppState;

/// Run a non-serving command; what it prints goes to stdout, logs to stderr.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("serve is handled by main"),
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
        }
        Command::Migrate => {
            open(config).await?;
            eprintln!("database is up to date");
        }
        Command::Workspace(WorkspaceCommand::Create {
            name,
            admin_email,
            admin_password,
            admin_name,
        }) => {
            let state = open(config).await?;
            let created = create_workspace(
                &state,
                &name,
                &admin_email,
                &admin_password,
                admin_name.as_deref(),
            )
            .await?;
            println!("{}", serde_json::to_string(&created)?);
        }
    }
    Ok(())
}

async fn open(config: Config) -> anyhow::Result<AppState> {
    AppState::open(config)
        .await
        .map_err(|err| anyhow::anyhow!("opening the database: {}", err.message()))
}

/// `casefile workspace create`: a workspace with its owner and the owner's token.
pub async fn create_workspace(
    state: &AppState,
    name: &str,
    admin_email: &str,
    admin_password: &str,
    admin_name: Option<&str>,
) -> anyhow::Result<CreatedWorkspace> {
    workspaces::create(state, name, admin_email, admin_password, admin_name)
        .await
        .map_err(|err| anyhow::anyhow!("{}", err.message()))
}
