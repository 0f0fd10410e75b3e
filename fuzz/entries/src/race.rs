//! The host's reads of a helper's answer while a hostile thread keeps
//! rewriting the bytes being read: the fetch answer and page, the message
//! area and its length word, and a returned string.
//!
//! In ffb the writer is another process sharing the arena; here it is a
//! thread sharing one, which is the same to the host: whatever the writer
//! does, the host copies the bytes out once and decodes only its copy. So
//! each decode of a copy must be the same however often it runs, every
//! length the host uses must be one it checked, and nothing may panic.
//!
//! The writer is one thread for the whole process, started by the first
//! input: between inputs it idles, during one it loops over that input's
//! script. After an input the writer may still be finishing a store: the
//! next input's initial bytes can differ from what it wrote, which is one
//! more thing the host must survive, never an oracle this target relies on.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::{Mutex, Once, OnceLock};

use ffb_contract::wire::fetch::ANSWER_BYTES;
use ffb_contract::wire::{CONTROL_SIZE, MESSAGE_CAPACITY, MESSAGE_OFFSET};
use ffb_loader::fuzzing::{check_answer, read_cstr_of, FuzzArena};
use ffb_loader::ErrorKind;

use crate::decode::walk_checked;
use crate::input::Input;
use crate::memory::{GuardedPage, PAGE};
use crate::{new_arena, ARENA_LEN};

/// Where the answer header and the page go, as the bridge lays them out
/// after an empty program.
const ANSWER_AT: usize = CONTROL_SIZE;
const PAGE_AT: usize = ANSWER_AT + ANSWER_BYTES;
/// The bytes the writer can reach in the arena: the message area and the
/// data area, which follow each other.
const ARENA_SPAN: usize = ARENA_LEN - MESSAGE_OFFSET;
/// How many times the host reads everything while the writer runs.
const ROUNDS: usize = 8;

struct Shared {
    arena: FuzzArena,
    string: GuardedPage,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        arena: new_arena(),
        string: GuardedPage::new(),
    })
}

impl Shared {
    /// The byte the writer's offset `at` names: in the arena's message and
    /// data areas, or in the string's page.
    fn byte(&self, at: usize) -> &AtomicU8 {
        let at = at % (ARENA_SPAN + PAGE);
        let p = if at < ARENA_SPAN {
            self.arena.base().wrapping_add(MESSAGE_OFFSET + at)
        } else {
            self.string.start().wrapping_add(at - ARENA_SPAN)
        };
        // SAFETY: `p` is inside the arena mapping or the string's readable
        // page (the modulo above), both mapped for the process's life, and
        // any byte is a valid AtomicU8. The host copies these bytes with
        // plain copies while this thread stores to them: that is the race
        // a helper runs against the host across processes, reproduced.
        unsafe { &*p.cast::<AtomicU8>() }
    }
}

/// The hostile writer's orders: the script of the input being run, and
/// whether to apply it. A writer thread that lives as long as the process
/// takes them, so an input costs no thread start.
struct Orders {
    script: Mutex<Vec<(usize, u8)>>,
    /// Bumped for every input: the writer picks up the new script.
    generation: AtomicU64,
    /// Whether an input is being run (the writer sleeps between inputs).
    active: AtomicBool,
    /// The writer, to wake when an input starts.
    writer: OnceLock<std::thread::Thread>,
}

fn orders() -> &'static Orders {
    static ORDERS: OnceLock<Orders> = OnceLock::new();
    static WRITER: Once = Once::new();
    let orders = ORDERS.get_or_init(|| Orders {
        script: Mutex::new(Vec::new()),
        generation: AtomicU64::new(0),
        active: AtomicBool::new(false),
        writer: OnceLock::new(),
    });
    WRITER.call_once(|| {
        let writer = std::thread::Builder::new()
            .name("hostile-writer".into())
            .spawn(|| write_forever(shared(), orders))
            .expect("the writer thread");
        let _ = orders.writer.set(writer.thread().clone());
    });
    orders
}

/// The hostile writer: applies the current input's (offset, value) stores
/// over and over, and sets the message length word, while an input runs.
fn write_forever(shared: &Shared, orders: &Orders) -> ! {
    let length = &shared.arena.control().helper.message_len;
    let mut script = Vec::new();
    let mut seen = u64::MAX;
    let mut turn = 0u8;
    loop {
        if !orders.active.load(Acquire) {
            std::thread::park();
            continue;
        }
        let generation = orders.generation.load(Acquire);
        if generation != seen {
            seen = generation;
            script.clone_from(&orders.script.lock().unwrap_or_else(|p| p.into_inner()));
        }
        for &(at, value) in &script {
            shared.byte(at).store(value ^ turn, Relaxed);
            length.store(u32::from(value) * 16, Relaxed);
        }
        if script.is_empty() {
            // No script: sweep the page, so something always moves.
            shared
                .byte(PAGE_AT - MESSAGE_OFFSET + usize::from(turn))
                .store(turn, Relaxed);
        }
        turn = turn.wrapping_add(1);
    }
}

/// The host's side: every read it makes of an answer, each checked.
fn read_everything(shared: &Shared, want: usize, columns: usize, bound: usize, string_at: u64) {
    let arena = &shared.arena;
    let capacity = ARENA_LEN - PAGE_AT;
    let mut page = Vec::new();
    for _ in 0..ROUNDS {
        let mut head = [0u8; ANSWER_BYTES];
        arena.read_into(ANSWER_AT, &mut head);
        if let Ok((_, rows, used)) = check_answer(&head, want, capacity) {
            assert!(rows <= want && used <= capacity);
            arena.read_to_vec(PAGE_AT, used, &mut page);
            let first = walk_checked(&page, rows, columns);
            assert_eq!(
                first,
                walk_checked(&page, rows, columns),
                "a copy decoded twice differs"
            );
        }
        let len = arena.control().helper.message_len.load(Relaxed);
        match arena.message(len) {
            Ok(text) => {
                assert!(len as usize <= MESSAGE_CAPACITY);
                // At worst every byte is invalid and becomes U+FFFD.
                assert!(text.len() <= 3 * len as usize);
            }
            Err(e) => {
                assert!(
                    len as usize > MESSAGE_CAPACITY,
                    "a {len}-byte message refused: {e}"
                );
            }
        }
        match read_cstr_of(std::process::id() as i32, string_at, bound) {
            Ok(s) => assert!(s.len() <= bound && !s.contains(&0), "{} bytes", s.len()),
            Err(e) => assert!(
                matches!(e.kind, ErrorKind::Protocol | ErrorKind::ResourceLimit),
                "{e}"
            ),
        }
    }
}

/// The host reading while the writer writes. The input gives the host's
/// request (rows wanted, columns, the string bound), the bytes in place
/// before the race, and the writer's script.
pub fn host_race(data: &[u8]) {
    let shared = shared();
    let mut input = Input::new(data);
    let want = usize::from(input.u8()).max(1);
    let columns = usize::from(input.u8() % 16) + 1;
    let bound = usize::from(input.u16()) % (2 * PAGE);
    let initial = input.take(ARENA_LEN - ANSWER_AT);
    let data = shared.arena.base().wrapping_add(ANSWER_AT);
    // SAFETY: at most ARENA_LEN - ANSWER_AT bytes go to the arena's data
    // area, inside the mapping. The writer may still be finishing the last
    // input's pass, storing to the same bytes: shared memory written from
    // two sides, as the arena is, never a reference to it.
    unsafe { std::ptr::copy_nonoverlapping(initial.as_ptr(), data, initial.len()) };
    let string_len = usize::from(input.u16()) % (PAGE + 1);
    let string_at = shared.string.place_at_end(input.take(string_len));
    let script: Vec<(usize, u8)> = input
        .rest()
        .chunks(3)
        .map(|c| {
            let mut w = [0u8; 3];
            w[..c.len()].copy_from_slice(c);
            (usize::from(u16::from_le_bytes([w[0], w[1]])), w[2])
        })
        .collect();
    let orders = orders();
    *orders.script.lock().unwrap_or_else(|p| p.into_inner()) = script;
    orders.generation.fetch_add(1, Release);
    orders.active.store(true, Release);
    if let Some(writer) = orders.writer.get() {
        writer.unpark();
    }
    let read =
        std::panic::catch_unwind(|| read_everything(shared, want, columns, bound, string_at));
    orders.active.store(false, Release);
    if let Err(panic) = read {
        std::panic::resume_unwind(panic);
    }
}
