//! The `hookd` binary: the command line, on mimalloc.

/// mimalloc instead of the system allocator: a delivery's memory is allocated on the async
/// threads and freed on the database's, where glibc's malloc spent a sixth of hookd's time
/// in `single` and a quarter in `batch` (BENCHMARKS.md, "Realistic records").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in the `mi_option_e` of the mimalloc 3.3 that
/// libmimalloc-sys 0.1.49 bundles (pinned in the workspace's Cargo.toml for this number).
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Runs before `main` and before the first allocation: arenas are committed as they are used,
/// not at once. mimalloc's default on Linux commits a whole arena up front, which doubled
/// hookd's resident memory (21 → 42 MiB idle) for no speed.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // placed among the process's constructors, which the loader runs
#[used]
#[unsafe(link_section = ".init_array")]
static COMMIT_ARENAS_LAZILY: extern "C" fn() = {
    #[allow(unsafe_code)] // a call into mimalloc's C API
    extern "C" fn commit_arenas_lazily() {
        // SAFETY: sets one option's value; it allocates nothing and touches no other state.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }
    commit_arenas_lazily
};

fn main() -> std::process::ExitCode {
    hookd::cli::main()
}
