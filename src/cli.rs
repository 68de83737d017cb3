//! The commands besides `serve`: `migrate`, `schema`, `workspace create`, `articles
//! import`, `keys rotate`, `demo seed`, `backup`, `restore` and `eval` ([`eval`]).

pub mod eval;

use crate::config::{ArticlesCommand, Command, Config, DemoCommand, KeysCommand, WorkspaceCommand};
use crate::db::Db;
use crate::domain::Core;
use crate::domain::tenancy::workspaces::{self, CreatedWorkspace};
use crate::error::AppError;

/// Run a non-serving command; what it prints goes to stdout, logs to stderr.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => unreachable!("serve is handled by main"),
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
        }
        Command::Migrate(database) => {
            open(Config::for_command(database, None)).await?;
            eprintln!("database is up to date");
        }
        Command::Workspace(WorkspaceCommand::Create {
            name,
            admin_email,
            admin_password,
            admin_password_stdin,
            admin_name,
            database,
            signing,
        }) => {
            let admin_password = password(admin_password, admin_password_stdin)?;
            let core = open(Config::for_command(database, Some(signing))).await?;
            let created = create_workspace(
                &core,
                &name,
                &admin_email,
                &admin_password,
                admin_name.as_deref(),
            )
            .await?;
            println!("{}", serde_json::to_string(&created)?);
        }
        Command::Articles(ArticlesCommand::Import {
            workspace,
            base_url,
            dir,
            database,
        }) => {
            let core = open(Config::for_command(database, None)).await?;
            match crate::domain::tenancy::workspaces::get(&core, &workspace).await {
                Ok(_) => {}
                Err(AppError::NotFound(_)) => anyhow::bail!("no workspace {workspace}"),
                Err(err) => anyhow::bail!("reading workspace {workspace}: {}", err.detail()),
            }
            let imported =
                crate::domain::knowledge::articles::import_dir(&core, &workspace, &dir, &base_url)
                    .await?;
            println!("imported {imported} articles into {workspace}");
        }
        Command::Keys(KeysCommand::Seal {
            database,
            master_key,
        }) => {
            let mut config = Config::for_command(database, None);
            config.master_key = master_key;
            if config.master_key.is_none() {
                anyhow::bail!(
                    "set CASEFILE_MASTER_KEY (32 random bytes in base64: `openssl rand -base64 32`) to seal the secrets with; keep it: the server needs it from now on"
                );
            }
            let core = open(config).await?;
            let sealed = crate::db::seal::seal_all(&core.db, &crate::auth::keys::SEALED_SETTINGS)
                .await
                .map_err(|err| anyhow::anyhow!(err.detail()))?;
            println!("sealed {sealed} secrets: start the server with the same CASEFILE_MASTER_KEY");
        }
        Command::Keys(KeysCommand::Rotate {
            database,
            jwt_secret,
        }) => {
            if jwt_secret.as_deref().is_some_and(|s| !s.is_empty()) {
                anyhow::bail!(
                    "the signing key comes from CASEFILE_JWT_SECRET: rotate it by changing that \
                     variable (tokens it signed end), or unset it to keep a key ring in the database"
                );
            }
            let core = open(Config::for_command(database, None)).await?;
            let key = crate::auth::keys::rotate(&core.db)
                .await
                .map_err(|err| anyhow::anyhow!("rotating the signing keys: {}", err.message()))?;
            println!(
                "added signing key {}: new tokens are signed with it (running servers pick it up \
                 within a minute); tokens signed before stay valid until they expire",
                key.kid
            );
        }
        Command::Demo(DemoCommand::Seed {
            listen,
            database,
            signing,
        }) => {
            let core = open(Config::for_command(database, Some(signing))).await?;
            let demo = crate::demo::seed(&core)
                .await
                .map_err(|err| anyhow::anyhow!("seeding the demo: {}", err.message()))?;
            print!("{}", demo.describe(&format!("http://{listen}"), false));
        }
        Command::Eval(args) => eval::run(args).await?,
        Command::Backup { to, database } => {
            let url = Config::for_command(database, None).database_url();
            let bytes = crate::db::backup::backup(&url, &to)
                .await
                .map_err(|err| anyhow::anyhow!(err.detail()))?;
            println!(
                "backed up {} to {} ({bytes} bytes)",
                Db::describe(&url),
                to.display()
            );
        }
        Command::Restore { from, database } => {
            let url = Config::for_command(database, None).database_url();
            crate::db::backup::restore(&url, &from)
                .await
                .map_err(|err| anyhow::anyhow!(err.detail()))?;
            println!(
                "restored {} from {}: start the server (it migrates an older backup)",
                Db::describe(&url),
                from.display()
            );
        }
    }
    Ok(())
}

/// The owner's password: from standard input, or given (flag or variable).
fn password(given: Option<String>, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(
            !line.is_empty(),
            "--admin-password-stdin read an empty line: pipe the password in, e.g. `printf %s \"$PASSWORD\" | casefile workspace create … --admin-password-stdin`"
        );
        return Ok(line);
    }
    given.filter(|p| !p.is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "the owner needs a password: pass --admin-password-stdin and pipe it in, set CASEFILE_ADMIN_PASSWORD, or pass --admin-password"
        )
    })
}

async fn open(config: Config) -> anyhow::Result<Core> {
    config.check().map_err(anyhow::Error::msg)?;
    Core::open(config)
        .await
        .map_err(|err| anyhow::Error::msg(err.detail()))
}

/// `casefile workspace create`: a workspace with its owner and the owner's token.
pub async fn create_workspace(
    core: &Core,
    name: &str,
    admin_email: &str,
    admin_password: &str,
    admin_name: Option<&str>,
) -> anyhow::Result<CreatedWorkspace> {
    workspaces::create(core, name, admin_email, admin_password, admin_name)
        .await
        .map_err(|err| match &err {
            // Said with the flag's name, not the API field's.
            crate::error::AppError::BadInput { field, message, .. } => {
                let flag = match field.as_str() {
                    "adminEmail" => "--admin-email",
                    "adminPassword" => "the owner's password",
                    "adminName" => "--admin-name",
                    "name" => "--name",
                    other => other,
                };
                anyhow::anyhow!("{flag}: {message}")
            }
            _ => anyhow::Error::msg(err.detail()),
        })
}
