// Package keys is the DiskView's on-disk format: the order-preserving object
// encoding, the two hash functions, the key layout of every table and the
// Pebble comparer that splits a versioned key into its MVCC prefix and its
// version.
//
// # Objects
//
// An object encodes as a type tag byte followed by its value, so that
// bytes.Compare on encodings orders objects by type, then by value:
//
//	node      0x01 id (8 bytes big-endian)
//	string    0x02 esc(text) 0x00 0x01 esc(lang) 0x00 0x01
//	int64     0x03 uint64(v) XOR 1<<63 (8 bytes big-endian)
//	float64   0x04 ordered bits (8 bytes big-endian): positive values get the
//	          sign bit set, negative values are inverted; -0 is stored as +0
//	          and every NaN as one NaN above +Inf
//	bool      0x05 0x00 or 0x01
//	timestamp 0x06 uint64(unix_seconds) XOR 1<<63 (8 bytes), nanos (4 bytes),
//	          precision (1 byte)
//
// esc replaces every 0x00 byte by 0x00 0xFF, so the 0x00 0x01 terminator
// sorts a string before all its extensions and a text prefix is a key prefix.
// Every encoding is self-delimiting: no encoding is a proper prefix of
// another.
//
// # Hashes
//
//	HashSP = xxhash64(subject ‖ predicate)           (each 8 bytes big-endian)
//	HashPO = xxhash64(predicate ‖ object encoding)   (predicate 8 bytes big-endian)
//
// # Fact bodies and tables
//
// A fact's body is its triple in the space's order: s‖p‖obj for HashSP and
// p‖obj‖s for HashPO (ids 8 bytes big-endian). The space's hash is xxhash64 of
// the body's first part (s‖p, or p‖obj). Keys start with a table byte:
//
//	'a' hashSP ‖ body ‖ ^version   HashSP facts (source of truth)
//	'b' body ‖ ^version            HashSP facts by subject (derived)
//	'c' hashPO ‖ body ‖ ^version   HashPO facts (source of truth)
//	'd' body ‖ ^version            HashPO facts by predicate (derived)
//	'i' log index                  transaction record: the facts the
//	                               transaction created here, as (position,
//	                               body) pairs, to find a fact by id (derived)
//	'm' name                       metadata
//	'x' log index                  pending transaction -> its envelope
//
// ^version is the bitwise complement of the log index, 8 bytes big-endian, so
// a fact's newest version comes first. The value of a versioned key is 0x01
// followed by the fact id for a live fact, or 0x00 for a tombstone.
//
// # Comparer
//
// Keys compare bytewise. Split returns the length of the MVCC prefix (table
// byte, hash if any, body) for a complete versioned key, and the whole length
// for every other key, including partial keys used as seek bounds. Because
// bodies are self-delimiting, no prefix is a proper prefix of another, which
// is what Pebble needs for prefix bloom filters and NextPrefix.
package keys
