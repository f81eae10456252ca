// franz-go (pkg/kgo, pkg/kadm) against the broker under test: topic admin
// and configs, idempotent acks=all keyed produce, a consumer group that
// commits, and what kadm then reports about offsets, lag and groups; a
// transactional producer recovering after its transaction timed out.
package compat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func franzClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(t))}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ptr(s string) *string { return &s }

// configOf is a topic config as DescribeConfigs shows it.
func configOf(t *testing.T, adm *kadm.Client, topic, name string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(deadline(t), topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c
		}
	}
	t.Fatalf("DescribeTopicConfigs %s has no %s", topic, name)
	return kadm.Config{}
}

func TestFranzTopicAdminAndConfigs(t *testing.T) {
	ctx := deadline(t)
	adm := kadm.NewClient(franzClient(t))
	topic := unique("franz-admin")

	created, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": ptr("3600000")}, topic)
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if created.NumPartitions != 3 || created.ReplicationFactor != 1 {
		t.Errorf("CreateTopic answered %d partitions x %d replicas, want 3 x 1", created.NumPartitions, created.ReplicationFactor)
	}

	// A second create is refused with TOPIC_ALREADY_EXISTS.
	_, err = adm.CreateTopic(ctx, 3, 1, nil, topic)
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("second CreateTopic: %v, want TOPIC_ALREADY_EXISTS", err)
	}

	// Metadata: three partitions led by the one broker, which is the only
	// replica and in sync.
	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) != 1 {
		t.Fatalf("ListBrokers: %v %v, want one broker", brokers, err)
	}
	node := brokers[0].NodeID
	// Kafka creates a topic asynchronously: wait for metadata to have it.
	var topics kadm.TopicDetails
	eventually(t, func() string {
		topics, err = adm.ListTopics(ctx, topic)
		if err != nil || topics[topic].Err != nil {
			return fmt.Sprintf("ListTopics %s: %v %v", topic, err, topics[topic].Err)
		}
		return ""
	})
	detail := topics[topic]
	if detail.Err != nil || detail.IsInternal || len(detail.Partitions) != 3 {
		t.Fatalf("ListTopics %s: %+v", topic, detail)
	}
	for p := int32(0); p < 3; p++ {
		pd, ok := detail.Partitions[p]
		if !ok || pd.Leader != node || fmt.Sprint(pd.Replicas) != fmt.Sprint([]int32{node}) || fmt.Sprint(pd.ISR) != fmt.Sprint([]int32{node}) {
			t.Errorf("partition %d: %+v, want leader, replicas and ISR [%d]", p, pd, node)
		}
	}
	all, err := adm.ListTopics(ctx)
	if err != nil || !contains(all.Names(), topic) {
		t.Errorf("ListTopics() lacks %s: %v %v", topic, all.Names(), err)
	}

	// DescribeConfigs: the config given at creation is a dynamic topic
	// config; one not given is a default.
	c := configOf(t, adm, topic, "retention.ms")
	if c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %v from %v, want 3600000 from DYNAMIC_TOPIC_CONFIG", c.MaybeValue(), c.Source)
	}
	c = configOf(t, adm, topic, "cleanup.policy")
	if c.Value == nil || *c.Value != "delete" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("cleanup.policy = %v from %v, want the default delete", c.MaybeValue(), c.Source)
	}

	// IncrementalAlterConfigs: set one, delete the other back to its default.
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: ptr("2000000")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, topic)
	if err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			t.Errorf("AlterTopicConfigs %s: %v", r.Name, r.Err)
		}
	}
	// Kafka applies an alteration through its metadata log, so a describe
	// right after may still show the old values: wait for the new ones.
	eventually(t, func() string {
		c := configOf(t, adm, topic, "max.message.bytes")
		if c.Value == nil || *c.Value != "2000000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Sprintf("after set, max.message.bytes = %v from %v", c.MaybeValue(), c.Source)
		}
		c = configOf(t, adm, topic, "retention.ms")
		if c.Value == nil || *c.Value != "604800000" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Sprintf("after delete, retention.ms = %v from %v, want the default 604800000", c.MaybeValue(), c.Source)
		}
		return ""
	})

	// An unknown config is refused.
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: ptr("1")}}, topic)
	if err == nil && (len(resps) != 1 || resps[0].Err == nil) {
		t.Errorf("setting no.such.config succeeded: %+v", resps)
	}

	deleted, err := adm.DeleteTopics(ctx, topic)
	if err != nil || deleted[topic].Err != nil {
		t.Fatalf("DeleteTopics: %v %+v", err, deleted)
	}
	deleted, err = adm.DeleteTopics(ctx, topic)
	if err == nil && !errors.Is(deleted[topic].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("second DeleteTopics: %+v, want UNKNOWN_TOPIC_OR_PARTITION", deleted[topic])
	}
	// Kafka deletes a topic asynchronously: wait for it to go.
	eventually(t, func() string {
		topics, err = adm.ListTopics(ctx, topic)
		if err != nil {
			return fmt.Sprintf("ListTopics after delete: %v", err)
		}
		if d, ok := topics[topic]; ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Sprintf("deleted topic still listed: %+v", d)
		}
		return ""
	})
	// Its configs are gone with it.
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if rc, onErr := rcs.On(topic, nil); !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(onErr, kerr.UnknownTopicOrPartition) && !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("configs of a deleted topic: %+v %v %v, want UNKNOWN_TOPIC_OR_PARTITION", rc, err, onErr)
	}
}

// produced is what the producer was told about each record.
type produced struct {
	partition int32
	offset    int64
	ts        int64
}

func TestFranzProduceConsumeGroupAndOffsets(t *testing.T) {
	ctx := deadline(t)
	admCl := franzClient(t)
	adm := kadm.NewClient(admCl)
	topic := unique("franz-data")
	group := unique("franz-group")
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })

	// Idempotent (kgo's default) with acks=all; timestamps one second apart,
	// starting ten minutes ago, so ListOffsets by time has known answers.
	producer := franzClient(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	const n = 30
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	records := make([]*kgo.Record, n)
	for i := range records {
		records[i] = &kgo.Record{
			Key:       []byte(fmt.Sprintf("key-%d", i%7)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
			Headers:   []kgo.RecordHeader{{Key: "index", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: nil}},
			Timestamp: base.Add(time.Duration(i) * time.Second),
		}
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	want := map[string]produced{}
	next := map[int32]int64{}
	for i, r := range records {
		if p := kafkaPartition(string(r.Key), 3); r.Partition != p {
			t.Errorf("record %d (key %s) went to partition %d, Kafka's partitioner says %d", i, r.Key, r.Partition, p)
		}
		if r.Offset != next[r.Partition] {
			t.Errorf("record %d: offset %d in partition %d, want %d", i, r.Offset, r.Partition, next[r.Partition])
		}
		next[r.Partition]++
		if r.ProducerID < 0 {
			t.Errorf("record %d: no producer id, so not idempotent", i)
		}
		want[string(r.Value)] = produced{r.Partition, r.Offset, r.Timestamp.UnixMilli()}
	}

	// Consume with a group, committing by hand.
	consumer := franzClient(t,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := 0
	for got < n {
		fetches := consumer.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			t.Fatalf("PollFetches: %+v", errs)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			w, ok := want[string(r.Value)]
			if !ok {
				t.Errorf("consumed an unknown record %q", r.Value)
				return
			}
			delete(want, string(r.Value))
			var i int
			fmt.Sscanf(string(r.Value), "value-%d", &i)
			if string(r.Key) != fmt.Sprintf("key-%d", i%7) || r.Partition != w.partition || r.Offset != w.offset || r.Timestamp.UnixMilli() != w.ts || r.Topic != topic {
				t.Errorf("consumed %s key %s at %d/%d ts %d, produced at %d/%d ts %d", r.Value, r.Key, r.Partition, r.Offset, r.Timestamp.UnixMilli(), w.partition, w.offset, w.ts)
			}
			if len(r.Headers) != 2 || r.Headers[0].Key != "index" || string(r.Headers[0].Value) != fmt.Sprint(i) || r.Headers[1].Key != "empty" || len(r.Headers[1].Value) != 0 {
				t.Errorf("record %d headers: %+v", i, r.Headers)
			}
		})
	}
	if len(want) != 0 {
		t.Errorf("not consumed: %v", want)
	}

	// While the member is in the group, the group is Stable with it as the
	// only member, owning all three partitions.
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	dg := described[group]
	if dg.Err != nil || dg.State != "Stable" || dg.ProtocolType != "consumer" || len(dg.Members) != 1 {
		t.Fatalf("DescribeGroups: %+v", dg)
	}
	if parts := dg.AssignedPartitions()[topic]; len(parts) != 3 {
		t.Errorf("assigned %v of %s, want all 3 partitions", parts, topic)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || listed[group].State != "Stable" || listed[group].ProtocolType != "consumer" {
		t.Errorf("ListGroups: %+v %v", listed[group], err)
	}

	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("CommitUncommittedOffsets: %v", err)
	}
	// Committed offsets are the next offset of every partition.
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		o, ok := fetched.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != next[p] {
			t.Errorf("committed offset of partition %d: %+v, want %d", p, o, next[p])
		}
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		t.Fatalf("Lag: %v", err)
	}
	lag := lags[group]
	if lag.Error() != nil {
		t.Fatalf("Lag %s: %v", group, lag.Error())
	}
	for p := int32(0); p < 3; p++ {
		l, ok := lag.Lag.Lookup(topic, p)
		if !ok || l.Lag != 0 || l.End.Offset != next[p] || l.Commit.At != next[p] || l.IsEmpty() {
			t.Errorf("lag of partition %d: %+v, want 0 with commit and end %d and a member", p, l, next[p])
		}
	}

	// ListOffsets: earliest, latest, and by time.
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		if s.Err != nil || s.Offset != 0 || e.Err != nil || e.Offset != next[p] {
			t.Errorf("partition %d: start %+v end %+v, want 0 and %d", p, s, e, next[p])
		}
	}
	// After the timestamp of record 12: each partition's first record at or
	// after it.
	cut := base.Add(12 * time.Second).UnixMilli()
	byTime, err := adm.ListOffsetsAfterMilli(ctx, cut, topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli: %v", err)
	}
	for p := int32(0); p < 3; p++ {
		wantOffset, wantTs := next[p], int64(-1)
		for _, r := range records {
			if r.Partition == p && r.Timestamp.UnixMilli() >= cut {
				wantOffset, wantTs = r.Offset, r.Timestamp.UnixMilli()
				break
			}
		}
		o, _ := byTime.Lookup(topic, p)
		if o.Err != nil || o.Offset != wantOffset || (wantTs >= 0 && o.Timestamp != wantTs) {
			t.Errorf("partition %d after %d: %+v, want offset %d timestamp %d", p, cut, o, wantOffset, wantTs)
		}
	}
	// After every record: no record, so the end offset.
	byTime, err = adm.ListOffsetsAfterMilli(ctx, time.Now().Add(time.Minute).UnixMilli(), topic)
	if err != nil {
		t.Fatalf("ListOffsetsAfterMilli (future): %v", err)
	}
	for p := int32(0); p < 3; p++ {
		o, _ := byTime.Lookup(topic, p)
		if o.Err != nil || o.Offset != next[p] {
			t.Errorf("partition %d after now: %+v, want the end offset %d", p, o, next[p])
		}
	}

	// A group with a member cannot be deleted.
	dels, err := adm.DeleteGroups(ctx, group)
	if !groupFailed(err, dels[group].Err, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of a live group: %+v %v, want NON_EMPTY_GROUP", dels[group], err)
	}

	// The member leaves: the group is Empty, keeps its offsets, and can be
	// deleted.
	consumer.Close()
	described, err = adm.DescribeGroups(ctx, group)
	if err != nil || described[group].State != "Empty" || len(described[group].Members) != 0 {
		t.Errorf("after leaving: %+v %v, want Empty without members", described[group], err)
	}
	listed, err = adm.ListGroups(ctx)
	if err != nil || listed[group].State != "Empty" {
		t.Errorf("ListGroups after leaving: %+v %v", listed[group], err)
	}
	dels, err = adm.DeleteGroups(ctx, group)
	if err != nil || dels[group].Err != nil {
		t.Errorf("DeleteGroups: %+v %v", dels[group], err)
	}
	listed, err = adm.ListGroups(ctx)
	if _, ok := listed[group]; err != nil || ok {
		t.Errorf("deleted group still listed: %+v %v", listed[group], err)
	}
	fetched, err = adm.FetchOffsets(ctx, group)
	if err != nil || len(fetched[topic]) != 0 {
		t.Errorf("offsets of a deleted group: %+v %v, want none", fetched, err)
	}
	dels, err = adm.DeleteGroups(ctx, group)
	if !groupFailed(err, dels[group].Err, kerr.GroupIDNotFound) {
		t.Errorf("deleting a deleted group: %+v, want GROUP_ID_NOT_FOUND", dels[group])
	}
}

// groupFailed reports whether a one-group kadm request failed with want:
// kadm gives a group's error either in its result or, when that was the
// whole request, as a shard error.
func groupFailed(err, groupErr error, want error) bool {
	if errors.Is(groupErr, want) || errors.Is(err, want) {
		return true
	}
	var shards *kadm.ShardErrors
	if errors.As(err, &shards) {
		for _, e := range shards.Errs {
			if errors.Is(e.Err, want) {
				return true
			}
		}
	}
	return false
}

// sortedInt32 renders partitions for messages and comparisons.
func sortedInt32(ps []int32) string {
	s := append([]int32(nil), ps...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprint(s)
}

// A transaction the coordinator aborts at its timeout: the producer's next
// write, still at its old epoch, fails; franz-go then aborts and, before
// the next transaction, bumps its own epoch with InitProducerId naming its
// producer id and that epoch (KIP-360/KIP-588). The coordinator answers
// the epoch the abort bumped to, so the producer carries on: the next
// transaction commits, and a read_committed consumer sees only its record.
func TestFranzTransactionTimedOutRecoversWithItsEpoch(t *testing.T) {
	ctx := deadline(t)
	adm := kadm.NewClient(franzClient(t))
	topic := unique("franz-txn-timeout")
	txnID := unique("franz-txn")
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), topic) })
	producer := franzClient(t,
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(2*time.Second),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(3),
	)
	if err := producer.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	if err := producer.ProduceSync(ctx, kgo.StringRecord("timed-out")).FirstErr(); err != nil {
		t.Fatalf("ProduceSync in the first transaction: %v", err)
	}
	// Kafka looks for timed-out transactions every 10 s, pubsub at each tick.
	eventually(t, func() string {
		described, err := adm.DescribeTransactions(ctx, txnID)
		if err != nil {
			return fmt.Sprintf("DescribeTransactions: %v", err)
		}
		d, err := described.On(txnID, nil)
		if err != nil || d.State != "CompleteAbort" {
			return fmt.Sprintf("the transaction is not aborted at its timeout yet: %+v %v", d, err)
		}
		return ""
	})
	err := producer.ProduceSync(ctx, kgo.StringRecord("late")).FirstErr()
	if !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("a write after the timeout's abort: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	if err := producer.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("EndTransaction(TryAbort) after the timeout: %v", err)
	}
	if err := producer.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction after the timeout: %v", err)
	}
	if err := producer.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("ProduceSync in the next transaction: %v", err)
	}
	if err := producer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("EndTransaction(TryCommit) of the next transaction: %v", err)
	}
	consumer := franzClient(t,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	var seen []string
	for len(seen) == 0 {
		fetches := consumer.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			t.Fatalf("PollFetches: %+v", errs)
		}
		fetches.EachRecord(func(r *kgo.Record) { seen = append(seen, string(r.Value)) })
	}
	if len(seen) != 1 || seen[0] != "after" {
		t.Errorf("read_committed sees %q, want only the next transaction's record", seen)
	}
}
