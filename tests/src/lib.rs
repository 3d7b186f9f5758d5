//! Shared fixtures for the end-to-end tests and benchmarks: a generator of synthetic infrastructure-live repos.

use std::fmt::Write as _;
use std::path::Path;

/// The shape of a synthetic repo.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticRepo {
    /// Units in total.
    pub units: usize,
    /// `_envcommon/*.hcl` files; unit `i` includes `_envcommon/c{i % envcommon}.hcl`.
    pub envcommon: usize,
    /// Accounts (`acct0`, `acct1`, ...), each with `deploy_order` equal to its index.
    pub accounts: usize,
    /// Regions per account.
    pub regions: usize,
    /// Environments per region.
    pub envs: usize,
}

impl SyntheticRepo {
    /// The benchmark's shape: 10,000 units and 200 `_envcommon` files.
    pub const BENCH: SyntheticRepo = SyntheticRepo { units: 10_000, envcommon: 200, accounts: 4, regions: 3, envs: 4 };

    /// The path of unit `i`.
    pub fn unit_path(&self, i: usize) -> String {
        let groups = self.accounts * self.regions * self.envs;
        let group = i % groups;
        let (account, rest) = (group / (self.regions * self.envs), group % (self.regions * self.envs));
        let (region, env) = (rest / self.envs, rest % self.envs);
        format!("acct{account}/region{region}/env{env}/unit{i}")
    }

    /// Writes the repo's files under `root`. Each unit includes `root.hcl` and one `_envcommon` file, reads
    /// nothing else directly, and has two `dependency` blocks on earlier units of its environment; `root.hcl`
    /// and every `_envcommon` file read `account.hcl`, `region.hcl` and `env.hcl` with `read_terragrunt_config`.
    pub fn write(&self, root: &Path) -> std::io::Result<()> {
        let write = |relative: &str, text: &str| -> std::io::Result<()> {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap_or(root))?;
            std::fs::write(path, text)
        };
        let mut accounts_json = String::from("{");
        for a in 0..self.accounts {
            let sep = if a == 0 { "" } else { "," };
            let _ = write!(accounts_json, "{sep}\"acct{a}\": {{\"id\": \"{:012}\", \"deploy_order\": {a}}}", a + 1);
            write(&format!("acct{a}/account.hcl"), &format!("locals {{\n  account_name = \"acct{a}\"\n}}\n"))?;
            for r in 0..self.regions {
                write(
                    &format!("acct{a}/region{r}/region.hcl"),
                    &format!("locals {{\n  aws_region = \"region-{r}\"\n}}\n"),
                )?;
                for e in 0..self.envs {
                    write(
                        &format!("acct{a}/region{r}/env{e}/env.hcl"),
                        &format!("locals {{\n  env = \"env{e}\"\n}}\n"),
                    )?;
                }
            }
        }
        accounts_json.push_str("}\n");
        write("accounts.json", &accounts_json)?;
        let vars = r#"locals {
  account = read_terragrunt_config(find_in_parent_folders("account.hcl"))
  region  = read_terragrunt_config(find_in_parent_folders("region.hcl"))
  env     = read_terragrunt_config(find_in_parent_folders("env.hcl"))
  name    = "${local.account.locals.account_name}-${local.region.locals.aws_region}-${local.env.locals.env}"
}
"#;
        write("root.hcl", &format!("{vars}\nremote_state {{\n  backend = \"s3\"\n  config = {{\n    key = \"${{path_relative_to_include()}}/tf.tfstate\"\n  }}\n}}\n\ninputs = {{\n  name = local.name\n}}\n"))?;
        for c in 0..self.envcommon {
            write(
                &format!("_envcommon/c{c}.hcl"),
                &format!("{vars}\nterraform {{\n  source = \"git::https://example.com/modules.git//c{c}?ref=v1.0.0\"\n}}\n\ninputs = {{\n  component = \"c{c}\"\n  env = local.env.locals.env\n}}\n"),
            )?;
        }
        let groups = self.accounts * self.regions * self.envs;
        for i in 0..self.units {
            let mut text = format!(
                "include \"root\" {{\n  path = find_in_parent_folders(\"root.hcl\")\n}}\n\ninclude \"envcommon\" {{\n  path   = \"${{dirname(find_in_parent_folders(\"root.hcl\"))}}/_envcommon/c{}.hcl\"\n  expose = true\n}}\n",
                i % self.envcommon
            );
            for back in [1, 2] {
                if i >= back * groups {
                    let dep = i - back * groups;
                    let _ = write!(text, "\ndependency \"d{back}\" {{\n  config_path = \"../unit{dep}\"\n}}\n");
                }
            }
            text.push_str("\ninputs = {\n  size = 1\n}\n");
            write(&format!("{}/terragrunt.hcl", self.unit_path(i)), &text)?;
        }
        Ok(())
    }
}
