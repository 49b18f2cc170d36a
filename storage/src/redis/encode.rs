//! The wire form of a commit: Redis commands packed as MessagePack arrays ("chunks") that the
//! commit script unpacks with `cmsgpack` and runs in order. Chunking bounds the memory the
//! script needs at once, however large the batch.
//!
//! A chunk is one array of words: `count, word 1 .. word count, count, word 1 ..`, each command
//! preceded by its number of words (a MessagePack uint16).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::keys::Unit;

/// A chunk is closed once it holds at least this many bytes (one command may go beyond).
const CHUNK_BYTES_TARGET: usize = 1024 * 1024;
/// Most words one command may have: the script spreads them with Lua's `unpack`, which is
/// bounded by the Lua C stack (8000 slots in Redis).
pub(crate) const COMMAND_WORDS_MAX: u16 = 4_000;

/// MessagePack markers used here.
const ARRAY32: u8 = 0xdd;
const UINT16: u8 = 0xcd;
const STR8: u8 = 0xd9;
const STR16: u8 = 0xda;
const STR32: u8 = 0xdb;
const FIXSTR: u8 = 0xa0;
const FIXSTR_LEN_MAX: usize = 31;

/// Builds chunks command by command.
#[derive(Debug, Default)]
pub(crate) struct ChunkEncoder {
    chunks: Vec<Vec<u8>>,
    current: Vec<u8>,
    /// Entries (counts and words) in the current chunk's array.
    current_entries: u32,
    /// Where the count of the command being written sits in `current`.
    command_at: Option<usize>,
    command_words: u16,
    bytes: usize,
    commands: usize,
}

impl ChunkEncoder {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts a command; its first word is the command name.
    pub(crate) fn begin(&mut self, name: &str) -> &mut Self {
        debug_assert!(self.command_at.is_none(), "previous command not ended");
        if self.current.is_empty() {
            self.current.push(ARRAY32);
            self.current.extend_from_slice(&[0; 4]);
        }
        self.command_at = Some(self.current.len());
        self.current.extend_from_slice(&[UINT16, 0, 0]);
        self.current_entries += 1;
        self.command_words = 0;
        self.word(name.as_bytes())
    }

    /// Adds a word (binary safe).
    pub(crate) fn word(&mut self, bytes: &[u8]) -> &mut Self {
        assert!(
            self.command_words < COMMAND_WORDS_MAX,
            "a command has at most {COMMAND_WORDS_MAX} words"
        );
        let len = bytes.len();
        if len <= FIXSTR_LEN_MAX {
            self.current.push(FIXSTR | len as u8);
        } else if let Ok(len) = u8::try_from(len) {
            self.current.extend_from_slice(&[STR8, len]);
        } else if let Ok(len) = u16::try_from(len) {
            self.current.push(STR16);
            self.current.extend_from_slice(&len.to_be_bytes());
        } else {
            let len = u32::try_from(len).expect("a word beyond 4 GiB cannot reach Redis");
            self.current.push(STR32);
            self.current.extend_from_slice(&len.to_be_bytes());
        }
        self.current.extend_from_slice(bytes);
        self.current_entries += 1;
        self.command_words += 1;
        self
    }

    /// Adds a text word.
    pub(crate) fn text(&mut self, text: &str) -> &mut Self {
        self.word(text.as_bytes())
    }

    /// Adds text words.
    pub(crate) fn texts<'t>(&mut self, words: impl IntoIterator<Item = &'t str>) -> &mut Self {
        words.into_iter().for_each(|word| {
            self.text(word);
        });
        self
    }

    /// Adds a number as its decimal text, as Redis expects.
    pub(crate) fn number(&mut self, value: u64) -> &mut Self {
        use std::io::Write;
        let mut digits = [0u8; 20];
        let mut cursor = std::io::Cursor::new(&mut digits[..]);
        write!(cursor, "{value}").expect("20 bytes hold any u64");
        let len = cursor.position() as usize;
        self.word(&digits[..len])
    }

    /// Ends the command begun last.
    pub(crate) fn end(&mut self) {
        let at = self
            .command_at
            .take()
            .expect("end() follows begin() and its words");
        self.current[at + 1..at + 3].copy_from_slice(&self.command_words.to_be_bytes());
        self.commands += 1;
        if self.current.len() >= CHUNK_BYTES_TARGET {
            self.close_chunk();
        }
    }

    fn close_chunk(&mut self) {
        if self.current.is_empty() {
            return;
        }
        self.current[1..5].copy_from_slice(&self.current_entries.to_be_bytes());
        self.bytes += self.current.len();
        self.chunks.push(std::mem::take(&mut self.current));
        self.current_entries = 0;
    }

    /// The finished chunks of `unit`, with their size and number of commands.
    pub(crate) fn finish(mut self, unit: Unit) -> EncodedUnit {
        debug_assert!(self.command_at.is_none(), "last command not ended");
        self.close_chunk();
        EncodedUnit {
            unit,
            chunks: self.chunks,
            bytes: self.bytes,
            commands: self.commands,
        }
    }
}

/// One encoder per atomic unit of a batch (see [`Unit`]): a command goes to the unit whose keys
/// it writes.
#[derive(Debug, Default)]
pub(crate) struct BatchEncoder {
    units: BTreeMap<Unit, ChunkEncoder>,
}

impl BatchEncoder {
    /// The encoder of the prefix-wide keys.
    pub(crate) fn registry(&mut self) -> &mut ChunkEncoder {
        self.units.entry(Unit::Registry).or_default()
    }

    /// The encoder of `queue`'s keys.
    pub(crate) fn queue(&mut self, queue: &Arc<str>) -> &mut ChunkEncoder {
        let unit = Unit::Queue(queue.clone());
        self.units.entry(unit).or_default()
    }

    /// Every unit with commands: the registry first (a queue is registered before its keys
    /// are written, so recovery, which starts from the registry, finds it), then the queues.
    pub(crate) fn finish(self) -> EncodedBatch {
        let units: Vec<EncodedUnit> = self
            .units
            .into_iter()
            .map(|(unit, encoder)| encoder.finish(unit))
            .filter(|unit| unit.commands > 0)
            .collect();
        EncodedBatch {
            bytes: units.iter().map(|unit| unit.bytes).sum(),
            commands: units.iter().map(|unit| unit.commands).sum(),
            units,
        }
    }
}

/// One unit's commands, ready for the commit script.
#[derive(Debug)]
pub(crate) struct EncodedUnit {
    pub unit: Unit,
    /// MessagePack chunks, in order.
    pub chunks: Vec<Vec<u8>>,
    /// Their total size in bytes.
    pub bytes: usize,
    /// Redis commands they hold.
    pub commands: usize,
}

/// A batch ready for the commit script: its units in the order they are applied.
#[derive(Debug, Default)]
pub(crate) struct EncodedBatch {
    pub units: Vec<EncodedUnit>,
    /// Their total size in bytes.
    pub bytes: usize,
    /// Redis commands they hold.
    pub commands: usize,
}

impl EncodedBatch {
    /// Every chunk, unit after unit.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.units.iter().flat_map(|unit| &unit.chunks)
    }
}

/// Reads chunks back into commands of text words (tests only: the script does this in Redis).
#[cfg(test)]
pub(crate) fn decode_commands(batch: &EncodedBatch) -> Vec<Vec<String>> {
    fn take<'a>(bytes: &mut &'a [u8], len: usize) -> &'a [u8] {
        let (head, rest) = bytes.split_at(len);
        *bytes = rest;
        head
    }
    let mut commands = Vec::new();
    for chunk in batch.chunks() {
        let mut bytes = &chunk[5..];
        while !bytes.is_empty() {
            assert_eq!(take(&mut bytes, 1), [UINT16]);
            let count = u16::from_be_bytes(take(&mut bytes, 2).try_into().unwrap());
            let words = (0..count)
                .map(|_| {
                    let marker = take(&mut bytes, 1)[0];
                    let len = match marker {
                        STR8 => usize::from(take(&mut bytes, 1)[0]),
                        STR16 => {
                            usize::from(u16::from_be_bytes(take(&mut bytes, 2).try_into().unwrap()))
                        }
                        STR32 => {
                            u32::from_be_bytes(take(&mut bytes, 4).try_into().unwrap()) as usize
                        }
                        fixstr => usize::from(fixstr & 0x1f),
                    };
                    String::from_utf8_lossy(take(&mut bytes, len)).into_owned()
                })
                .collect();
            commands.push(words);
        }
    }
    commands
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_and_words_sized() {
        let mut encoder = ChunkEncoder::new();
        encoder.begin("SET").text("k").word(&[7u8; 300]).end();
        encoder.begin("DEL").text("k").end();
        let batch = encoder.finish(Unit::Registry);
        assert_eq!(batch.chunks.len(), 1);
        assert_eq!(batch.commands, 2);
        let chunk = &batch.chunks[0];
        assert_eq!(chunk[0], ARRAY32);
        // 1 count + 3 words, then 1 count + 2 words.
        assert_eq!(u32::from_be_bytes(chunk[1..5].try_into().unwrap()), 7);
        assert_eq!(
            &chunk[5..8],
            &[UINT16, 0, 3],
            "first command has three words"
        );
        assert_eq!(&chunk[8..12], &[FIXSTR | 3, b'S', b'E', b'T']);
        let str16_at = 8 + 4 + 2;
        assert_eq!(chunk[str16_at], STR16);
        assert_eq!(
            u16::from_be_bytes([chunk[str16_at + 1], chunk[str16_at + 2]]),
            300
        );
    }

    #[test]
    fn large_batches_split_into_chunks_on_command_boundaries() {
        let mut encoder = ChunkEncoder::new();
        for _ in 0..5 {
            encoder
                .begin("SET")
                .text("k")
                .word(&vec![1u8; 400_000])
                .end();
        }
        let batch = encoder.finish(Unit::Registry);
        assert_eq!(batch.chunks.len(), 2, "1 MiB target: three per chunk");
        assert_eq!(
            batch.bytes,
            batch.chunks.iter().map(Vec::len).sum::<usize>()
        );
    }
}
