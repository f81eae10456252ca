// Package compat holds Go client suites (franz-go and IBM/sarama) run
// against a Kafka-protocol broker named by BOOTSTRAP=host:port: pubsub, and
// Apache Kafka as the reference (crates/cli/tests/cli/go_clients.rs runs
// them against both). Every test asserts what a client observes, so the
// same expectations hold on both brokers.
package compat

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// bootstrap is the broker under test; the suite refuses to run without one.
func bootstrap(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("BOOTSTRAP")
	if addr == "" {
		t.Fatal("set BOOTSTRAP=host:port to the broker under test")
	}
	return addr
}

var serial atomic.Int64

// unique names a topic or group for this run, so reruns against one
// broker never meet their own leftovers.
func unique(prefix string) string {
	return fmt.Sprintf("go-%s-%d-%d", prefix, time.Now().UnixNano(), serial.Add(1))
}

// deadline bounds a test that waits on the broker, so a broker that never
// answers fails the test rather than hanging it.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually retries check (which says what is wrong, or "" when all is
// right) until it passes, for state a broker applies asynchronously; it
// fails the test with the last complaint if that takes over a minute.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	end := time.Now().Add(time.Minute)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(end) {
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// murmur2 is Kafka's hash for keyed records (Utils.murmur2): the default
// partitioner of the Java client, which franz-go follows, puts a key in
// partition (murmur2(key) & 0x7fffffff) % partitions.
func murmur2(data []byte) int32 {
	const seed uint32 = 0x9747b28c
	const m uint32 = 0x5bd1e995
	const r = 24
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// kafkaPartition is the partition Kafka's default partitioner picks for key.
func kafkaPartition(key string, partitions int32) int32 {
	return (murmur2([]byte(key)) & 0x7fffffff) % partitions
}

func TestMurmur2MatchesKafka(t *testing.T) {
	// Values from Kafka's UtilsTest.testMurmur2.
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
