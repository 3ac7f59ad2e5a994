//! The DuckDB side of `bench segments`: a virtualenv filled from PyPI, and the same questions
//! asked in SQL over the CSV copy of the data.

use super::*;

// ---------------------------------------------------------------------------------------------
// DuckDB.

pub(super) struct DuckAnswer {
    pub(super) sizes: Vec<usize>,
    pub(super) seconds: f64,
    pub(super) how: String,
}

/// A virtualenv in the work directory with DuckDB from PyPI (kept between runs).
pub(super) fn duckdb_python(work: &Path) -> Result<PathBuf, String> {
    let venv = work.join("venv");
    let python = venv.join("bin").join("python");
    let has_duckdb = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_duckdb(&python) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating a virtualenv in {}", venv.display());
        let s = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| {
                format!("cannot run python3 (needed for DuckDB; or use --no-duckdb): {e}")
            })?;
        if !s.success() {
            return Err(format!("python3 -m venv {} failed", venv.display()));
        }
    }
    eprintln!("installing duckdb from PyPI into {}", venv.display());
    let s = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "duckdb",
        ])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !s.success() || !has_duckdb(&python) {
        return Err("pip install duckdb failed (or use --no-duckdb)".into());
    }
    Ok(python)
}

pub(super) fn ask_duckdb(
    work: &Path,
    python: &Path,
    questions: &[Question],
    threads: usize,
    runs: usize,
) -> Result<(Vec<DuckAnswer>, Value), String> {
    let script = work.join("segments_duckdb.py");
    std::fs::write(&script, DUCKDB_SCRIPT).map_err(|e| e.to_string())?;
    let abs = |name: &str| -> Result<String, String> {
        let p = work.join(name);
        std::fs::canonicalize(&p)
            .map(|p| p.display().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let spec = json!({
        "profiles_csv": abs("profiles.csv")?,
        "events_csv": abs("events.csv")?,
        "threads": threads,
        "runs": runs.max(1),
        "now": NOW,
        "questions": questions.iter().map(|q| json!({
            "name": q.name,
            "audiences": q.audiences.iter().map(Aud::spec).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let spec_path = work.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| e.to_string())?;
    let out = Command::new(python)
        .arg(&script)
        .arg(&spec_path)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("the DuckDB script failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or("the DuckDB script printed no result")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("DuckDB result: {e}"))?;
    let answers = v["questions"]
        .as_array()
        .ok_or("DuckDB result without questions")?
        .iter()
        .map(|q| DuckAnswer {
            sizes: q["sizes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|n| n as usize)
                        .collect()
                })
                .unwrap_or_default(),
            seconds: q["seconds"].as_f64().unwrap_or(f64::NAN),
            how: q["how"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    Ok((answers, v))
}
