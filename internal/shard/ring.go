// Package shard divides work among qscale's replicas through coordination.k8s.io Leases.
//
// Every replica holds a membership Lease of its own, which names where the others reach it,
// and watches everyone's. A key (a broker connection) belongs to exactly one live member,
// chosen by rendezvous hashing over the members: every replica that sees the same members
// makes the same choice without talking to the others, and when a member joins or leaves only
// the keys it gains or held move. A member that cannot renew its Lease stops owning anything
// before the others count it gone, so that two replicas own a key only while a change of
// members is on its way to them.
package shard

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
)

// Member is one replica as its Lease describes it.
type Member struct {
	// Identity is unique per replica process: the Lease's holder identity.
	Identity string
	// Address is host:port of its metrics API server, where the others send it samples.
	Address string
	// Fingerprint is the hex SHA-256 digest of its serving certificate, by which the others
	// know they reached it and not whoever holds its address.
	Fingerprint string
}

// Owner returns the member among members that owns key, by rendezvous hashing: the one whose
// identity hashed with key scores highest. It returns false when members is empty.
func Owner(members []Member, key string) (Member, bool) {
	var best Member
	var bestScore uint64
	found := false
	for _, m := range members {
		s := score(m.Identity, key)
		if !found || s > bestScore || (s == bestScore && m.Identity < best.Identity) {
			best, bestScore, found = m, s, true
		}
	}
	return best, found
}

// score hashes a member's identity with a key. FNV-1a alone spreads similar inputs poorly,
// so its sum goes through a finaliser (SplitMix64's) that makes every bit depend on every
// other: keys that differ in one character land on unrelated members.
func score(identity, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(identity))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// sameMembers reports whether a and b, both sorted by identity, name the same members at the
// same addresses and certificates.
func sameMembers(a, b []Member) bool { return slices.Equal(a, b) }

// digest is a short, stable name part for an identity: Lease names must be DNS subdomains,
// which an identity (host name and UUID) need not be.
func digest(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:8])
}
