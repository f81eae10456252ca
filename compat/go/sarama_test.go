// IBM/sarama against the broker under test: a synchronous producer (acks
// all, idempotent, keyed, headers, every compression codec), partition
// consumers, a consumer group of two members sharing partitions under the
// range and round-robin strategies with committed offsets, and ClusterAdmin
// topics, configs and groups.
package compat

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaConfig speaks the protocol of Kafka 3.6 (sarama's newest), which
// both brokers serve.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.ClientID = "pubsub-compat-sarama"
	return c
}

func saramaAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{bootstrap(t)}, saramaConfig())
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

func createTopic(t *testing.T, adm sarama.ClusterAdmin, topic string, partitions int32) {
	t.Helper()
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic %s: %v", topic, err)
	}
	t.Cleanup(func() { _ = adm.DeleteTopic(topic) })
	waitForTopic(t, adm, topic)
}

// waitForTopic waits until metadata shows the topic with its partitions.
func waitForTopic(t *testing.T, adm sarama.ClusterAdmin, topic string) {
	t.Helper()
	eventually(t, func() string {
		meta, err := adm.DescribeTopics([]string{topic})
		if err != nil || len(meta) != 1 || meta[0].Err != sarama.ErrNoError || len(meta[0].Partitions) == 0 {
			return fmt.Sprintf("topic %s not in metadata: %v", topic, err)
		}
		return ""
	})
}

func TestSaramaClusterAdminTopics(t *testing.T) {
	adm := saramaAdmin(t)
	topic := unique("sarama-admin")
	retention := "3600000"
	err := adm.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}, false)
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Errorf("second CreateTopic: %v, want ErrTopicAlreadyExists", err)
	}

	brokers, controller, err := adm.DescribeCluster()
	if err != nil || len(brokers) != 1 || brokers[0].ID() != controller {
		t.Fatalf("DescribeCluster: %v controller %d %v, want one broker that is the controller", brokers, controller, err)
	}

	// Kafka creates a topic asynchronously: wait for metadata to have it.
	waitForTopic(t, adm, topic)

	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	detail, ok := topics[topic]
	if !ok || detail.NumPartitions != 3 || detail.ReplicationFactor != 1 {
		t.Errorf("ListTopics %s: %+v (listed: %v)", topic, detail, ok)
	}
	if v := detail.ConfigEntries["retention.ms"]; v == nil || *v != retention {
		t.Errorf("ListTopics %s configs: %v, want retention.ms=%s", topic, detail.ConfigEntries, retention)
	}

	meta, err := adm.DescribeTopics([]string{topic})
	if err != nil || len(meta) != 1 {
		t.Fatalf("DescribeTopics: %v %v", meta, err)
	}
	if meta[0].Err != sarama.ErrNoError || meta[0].Name != topic || len(meta[0].Partitions) != 3 || meta[0].IsInternal {
		t.Errorf("DescribeTopics: %+v", meta[0])
	}
	var ids []int32
	for _, p := range meta[0].Partitions {
		ids = append(ids, p.ID)
		if p.Err != sarama.ErrNoError || p.Leader != controller || fmt.Sprint(p.Replicas) != fmt.Sprint([]int32{controller}) || fmt.Sprint(p.Isr) != fmt.Sprint([]int32{controller}) {
			t.Errorf("partition %+v, want led by and replicated on %d", p, controller)
		}
	}
	if sortedInt32(ids) != "[0 1 2]" {
		t.Errorf("partitions %v, want 0, 1, 2", ids)
	}

	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	found := false
	for _, e := range entries {
		if e.Name == "retention.ms" {
			found = true
			if e.Value != retention || e.Source != sarama.SourceTopic || e.Default {
				t.Errorf("retention.ms: %+v, want %s from the topic", e, retention)
			}
		}
	}
	if !found {
		t.Errorf("DescribeConfig lacks retention.ms: %+v", entries)
	}

	week := "604800000"
	err = adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms":   {Operation: sarama.IncrementalAlterConfigsOperationDelete},
		"cleanup.policy": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: ptr("compact")},
	}, false)
	if err != nil {
		t.Fatalf("IncrementalAlterConfig: %v", err)
	}
	// Kafka applies it through its metadata log: wait for it to show.
	eventually(t, func() string {
		entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			return fmt.Sprintf("DescribeConfig: %v", err)
		}
		seen := map[string]sarama.ConfigEntry{}
		for _, e := range entries {
			seen[e.Name] = e
		}
		if e := seen["retention.ms"]; e.Value != week || e.Source == sarama.SourceTopic {
			return fmt.Sprintf("after delete, retention.ms: %+v, want the default %s", e, week)
		}
		if e := seen["cleanup.policy"]; e.Value != "compact" || e.Source != sarama.SourceTopic {
			return fmt.Sprintf("after set, cleanup.policy: %+v, want compact from the topic", e)
		}
		return ""
	})

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("second DeleteTopic: %v, want ErrUnknownTopicOrPartition", err)
	}
	// Kafka deletes a topic asynchronously: wait for it to go.
	eventually(t, func() string {
		topics, err := adm.ListTopics()
		if _, ok := topics[topic]; err != nil || ok {
			return fmt.Sprintf("deleted topic still listed (%v)", err)
		}
		return ""
	})
}

// headerMap renders record headers for comparison.
func headerMap(hs []*sarama.RecordHeader) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[string(h.Key)] = string(h.Value)
	}
	return m
}

func TestSaramaProduceEveryCodecAndConsume(t *testing.T) {
	adm := saramaAdmin(t)
	topic := unique("sarama-codecs")
	createTopic(t, adm, topic, 3)

	codecs := []sarama.CompressionCodec{
		sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy,
		sarama.CompressionLZ4, sarama.CompressionZSTD,
	}
	type sent struct {
		key, value string
		partition  int32
		offset     int64
		headers    map[string]string
	}
	var all []sent
	keyPartition := map[string]int32{}
	for _, codec := range codecs {
		cfg := saramaConfig()
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		cfg.Producer.Return.Successes = true
		cfg.Producer.Compression = codec
		// One batch per partition for the whole SendMessages call.
		cfg.Producer.Flush.Messages = 1000
		cfg.Producer.Flush.Frequency = 50 * time.Millisecond
		producer, err := sarama.NewSyncProducer([]string{bootstrap(t)}, cfg)
		if err != nil {
			t.Fatalf("NewSyncProducer (%v): %v", codec, err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 20; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%5)),
				Value: sarama.StringEncoder(fmt.Sprintf("%v-value-%d-%s", codec, i, string(make([]byte, 100)))),
				Headers: []sarama.RecordHeader{
					{Key: []byte("codec"), Value: []byte(codec.String())},
					{Key: []byte("index"), Value: []byte(fmt.Sprint(i))},
				},
			})
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("SendMessages (%v): %v", codec, err)
		}
		_ = producer.Close()
		for i, m := range msgs {
			key := fmt.Sprintf("key-%d", i%5)
			if p, ok := keyPartition[key]; ok && p != m.Partition {
				t.Errorf("key %s went to partitions %d and %d", key, p, m.Partition)
			}
			keyPartition[key] = m.Partition
			all = append(all, sent{key, string(m.Value.(sarama.StringEncoder)), m.Partition, m.Offset,
				map[string]string{"codec": codec.String(), "index": fmt.Sprint(i)}})
		}
	}

	// Offsets are dense per partition, in the order the producer saw them.
	next := map[int32]int64{}
	for _, s := range all {
		if s.offset != next[s.partition] {
			t.Errorf("%s: offset %d in partition %d, want %d", s.value, s.offset, s.partition, next[s.partition])
		}
		next[s.partition] = s.offset + 1
	}

	consumer, err := sarama.NewConsumer([]string{bootstrap(t)}, saramaConfig())
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close()
	parts, err := consumer.Partitions(topic)
	if err != nil || sortedInt32(parts) != "[0 1 2]" {
		t.Fatalf("Partitions: %v %v", parts, err)
	}
	ctx := deadline(t)
	byPlace := map[string]sent{}
	for _, s := range all {
		byPlace[fmt.Sprintf("%d/%d", s.partition, s.offset)] = s
	}
	for _, p := range parts {
		if next[p] == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", p, err)
		}
		if hw := pc.HighWaterMarkOffset(); hw != 0 && hw != next[p] {
			t.Errorf("partition %d: high watermark %d, want %d", p, hw, next[p])
		}
		for want := int64(0); want < next[p]; want++ {
			select {
			case m := <-pc.Messages():
				s := byPlace[fmt.Sprintf("%d/%d", p, m.Offset)]
				if m.Offset != want || string(m.Key) != s.key || string(m.Value) != s.value || fmt.Sprint(headerMap(m.Headers)) != fmt.Sprint(s.headers) {
					t.Errorf("partition %d offset %d: key %q value %.20q headers %v, want offset %d key %q value %.20q headers %v",
						p, m.Offset, m.Key, m.Value, headerMap(m.Headers), want, s.key, s.value, s.headers)
				}
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-ctx.Done():
				t.Fatalf("partition %d: only %d of %d records", p, want, next[p])
			}
		}
		if hw := pc.HighWaterMarkOffset(); hw != next[p] {
			t.Errorf("partition %d: high watermark %d, want %d", p, hw, next[p])
		}
		_ = pc.Close()
	}

	// The client's offset lookups agree.
	client, err := sarama.NewClient([]string{bootstrap(t)}, saramaConfig())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	for _, p := range parts {
		oldest, err1 := client.GetOffset(topic, p, sarama.OffsetOldest)
		newest, err2 := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err1 != nil || err2 != nil || oldest != 0 || newest != next[p] {
			t.Errorf("partition %d: oldest %d newest %d (%v %v), want 0 and %d", p, oldest, newest, err1, err2, next[p])
		}
	}
	if _, err := client.GetOffset(topic, 7, sarama.OffsetNewest); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("offset of partition 7 of 3: %v, want ErrUnknownTopicOrPartition", err)
	}
}

// groupLog is what the members of a consumer group saw: the claims of
// each generation they set up, and who consumed what.
type groupLog struct {
	mu       sync.Mutex
	claims   map[int32]map[string][]int32 // generation -> member -> partitions
	consumed map[string]string            // value -> member
	owner    map[string]string            // member that consumed at partition/offset
}

type handler struct{ log *groupLog }

func (h handler) Setup(s sarama.ConsumerGroupSession) error {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	g := h.log.claims[s.GenerationID()]
	if g == nil {
		g = map[string][]int32{}
		h.log.claims[s.GenerationID()] = g
	}
	// A member can set up the same generation more than once (Kafka
	// answers a rejoin of a stable group without a new generation): its
	// claims are those of the latest session.
	var claimed []int32
	for _, ps := range s.Claims() {
		claimed = append(claimed, ps...)
	}
	g[s.MemberID()] = claimed
	return nil
}

func (h handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		// Committed before it counts as consumed, so the test sees the
		// commit of every record it has seen consumed.
		s.MarkMessage(m, "")
		s.Commit()
		h.log.mu.Lock()
		h.log.consumed[string(m.Value)] = s.MemberID()
		h.log.owner[fmt.Sprintf("%d/%d", m.Partition, m.Offset)] = s.MemberID()
		h.log.mu.Unlock()
	}
	return nil
}

func TestSaramaConsumerGroupTwoMembers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy func() sarama.BalanceStrategy
		want     string // the two members' partitions, in either order
	}{
		{"range", sarama.NewBalanceStrategyRange, "[[0 1] [2 3]]"},
		{"roundrobin", sarama.NewBalanceStrategyRoundRobin, "[[0 2] [1 3]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm := saramaAdmin(t)
			topic := unique("sarama-group-" + tc.name)
			group := unique("sarama-group-" + tc.name)
			createTopic(t, adm, topic, 4)
			ctx := deadline(t)

			log := &groupLog{claims: map[int32]map[string][]int32{}, consumed: map[string]string{}, owner: map[string]string{}}
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var groups []sarama.ConsumerGroup
			for i := 0; i < 2; i++ {
				cfg := saramaConfig()
				cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{tc.strategy()}
				cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
				cfg.Consumer.Offsets.AutoCommit.Enable = false
				cg, err := sarama.NewConsumerGroup([]string{bootstrap(t)}, group, cfg)
				if err != nil {
					t.Fatalf("NewConsumerGroup: %v", err)
				}
				groups = append(groups, cg)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for runCtx.Err() == nil {
						if err := cg.Consume(runCtx, []string{topic}, handler{log}); err != nil && runCtx.Err() == nil {
							t.Errorf("Consume: %v", err)
							return
						}
					}
				}()
			}
			closeAll := func() {
				stop()
				for _, cg := range groups {
					_ = cg.Close()
				}
				wg.Wait()
			}
			defer closeAll()

			// Wait for a generation with both members.
			var gen int32
			var members map[string][]int32
			eventually(t, func() string {
				log.mu.Lock()
				defer log.mu.Unlock()
				for g, ms := range log.claims {
					if len(ms) == 2 && g >= gen {
						gen, members = g, ms
					}
				}
				if members == nil {
					return fmt.Sprintf("no generation with two members: %v", log.claims)
				}
				return ""
			})
			var split []string
			for _, ps := range members {
				split = append(split, sortedInt32(ps))
			}
			sort.Strings(split)
			if got := fmt.Sprint(split); got != tc.want {
				t.Fatalf("%s split 4 partitions as %s, want %s", tc.name, got, tc.want)
			}

			// The coordinator describes the same: Stable, two members, the
			// protocol chosen, each member's assignment.
			described, err := adm.DescribeConsumerGroups([]string{group})
			if err != nil || len(described) != 1 {
				t.Fatalf("DescribeConsumerGroups: %v %v", described, err)
			}
			d := described[0]
			if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != tc.name || len(d.Members) != 2 {
				t.Errorf("DescribeConsumerGroups: state %s type %s protocol %s members %d", d.State, d.ProtocolType, d.Protocol, len(d.Members))
			}
			for id, m := range d.Members {
				a, err := m.GetMemberAssignment()
				if err != nil || a == nil || sortedInt32(a.Topics[topic]) != sortedInt32(members[id]) {
					t.Errorf("member %s assignment %+v (%v), its session claims %v", id, a, err, members[id])
				}
			}
			listed, err := adm.ListConsumerGroups()
			if err != nil || listed[group] != "consumer" {
				t.Errorf("ListConsumerGroups: %v %v", listed[group], err)
			}

			// Produce 10 records to each partition; each is consumed by the
			// member that owns its partition.
			cfg := saramaConfig()
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Return.Successes = true
			cfg.Producer.Partitioner = sarama.NewManualPartitioner
			producer, err := sarama.NewSyncProducer([]string{bootstrap(t)}, cfg)
			if err != nil {
				t.Fatalf("NewSyncProducer: %v", err)
			}
			var msgs []*sarama.ProducerMessage
			for i := 0; i < 40; i++ {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i % 4), Value: sarama.StringEncoder(fmt.Sprintf("v%d", i))})
			}
			if err := producer.SendMessages(msgs); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			_ = producer.Close()
			eventually(t, func() string {
				log.mu.Lock()
				defer log.mu.Unlock()
				if len(log.consumed) != 40 {
					return fmt.Sprintf("consumed %d of 40", len(log.consumed))
				}
				return ""
			})
			log.mu.Lock()
			for _, m := range msgs {
				who := log.owner[fmt.Sprintf("%d/%d", m.Partition, m.Offset)]
				if !containsInt32(members[who], m.Partition) {
					t.Errorf("%s (partition %d) consumed by %s, which owns %v", m.Value, m.Partition, who, members[who])
				}
			}
			log.mu.Unlock()

			// Offsets committed: 10 for every partition.
			offsets, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
			if err != nil {
				t.Fatalf("ListConsumerGroupOffsets: %v", err)
			}
			for p := int32(0); p < 4; p++ {
				b := offsets.GetBlock(topic, p)
				if b == nil || b.Err != sarama.ErrNoError || b.Offset != 10 {
					t.Errorf("committed offset of partition %d: %+v, want 10", p, b)
				}
			}

			// Both leave: the group is Empty, keeps its offsets, and can be
			// deleted.
			closeAll()
			described, err = adm.DescribeConsumerGroups([]string{group})
			if err != nil || len(described) != 1 || described[0].State != "Empty" || len(described[0].Members) != 0 {
				t.Errorf("after leaving: %+v %v", described, err)
			}
			offsets, err = adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
			if b := offsets.GetBlock(topic, 0); err != nil || b == nil || b.Offset != 10 {
				t.Errorf("offset after leaving: %+v %v, want 10", b, err)
			}
			if err := adm.DeleteConsumerGroup(group); err != nil {
				t.Errorf("DeleteConsumerGroup: %v", err)
			}
			if err := adm.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrGroupIDNotFound) {
				t.Errorf("second DeleteConsumerGroup: %v, want ErrGroupIDNotFound", err)
			}
			listed, err = adm.ListConsumerGroups()
			if _, ok := listed[group]; err != nil || ok {
				t.Errorf("deleted group still listed: %v", err)
			}
		})
	}
}

func containsInt32(list []int32, x int32) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}
