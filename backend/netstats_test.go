package backend

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tendhq/tend/libcontainerd"
)

func TestParseNetDev(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1306      11    1    2    0     0          0         0      866       9    3    4    0     0       0          0
`
	got, err := parseNetDev(strings.NewReader(dev))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]libcontainerd.NetworkStats{"eth0": {RxBytes: 1306, RxPackets: 11, RxErrors: 1, RxDropped: 2, TxBytes: 866, TxPackets: 9, TxErrors: 3, TxDropped: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseNetDev(strings.NewReader("a\nb\neth0: 1 2 3\n")); err == nil {
		t.Error("a short line parsed")
	}
}
