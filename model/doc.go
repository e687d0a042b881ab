// Package model is the data model every Akutan service shares, in one
// place: the two hash spaces, hash ranges with their 2^64 end, the hash
// functions, the node and fact ID layout, and the order-preserving object
// encoding that fixes the order of objects everywhere.
//
// It imports only the wire contract (proto/entrypb), so the API server, the
// control plane and the CLI use the model without linking Pebble.
//
// # Contract
//
//  1. HashSP(s, p) is xxhash64 of s and p, each as 8 bytes big-endian.
//  2. HashPO(p, o) is xxhash64 of p as 8 bytes big-endian followed by the
//     object's encoding (AppendObject with node objects named by id).
//  3. A HashRange is the half-open [Start, End); End == 0 stands for 2^64,
//     so HashRange{} is the whole space and no range is empty.
//  4. Node and fact IDs are index<<20 | position: position 1..2^20-1 within
//     the transaction at log index index, so every view derives the same
//     IDs and an ID names the index that created it.
//  5. Objects sort by their encoding, bytewise: nodes by id, then strings by
//     text bytes and language, int64 numerically, float64 numerically (-0
//     equal to 0, NaN above +Inf), false before true, timestamps by seconds,
//     nanos and precision. CompareObjects is that order.
package model
