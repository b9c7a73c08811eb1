package specs_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/killfeed/killfeed/app"
)

var _ = Describe("connection timeouts", func() {
	var base string
	BeforeEach(func() {
		base = startKillfeed(app.Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}).URL()
	})
	// rawConn is a TCP connection to the service; reads give up after a
	// guard far longer than the timeouts under test.
	rawConn := func() net.Conn {
		GinkgoHelper()
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		Expect(c.SetReadDeadline(time.Now().Add(20 * time.Second))).To(Succeed())
		return c
	}

	It("answers 408 to a body that stalls past --read-timeout and closes the connection", func() {
		c := rawConn()
		_, err := io.WriteString(c, "POST /api/killmails HTTP/1.1\r\nHost: kf\r\nAccept-Encoding: gzip\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"killmail_id\":")
		Expect(err).NotTo(HaveOccurred())
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.StatusCode).To(Equal(http.StatusRequestTimeout))
		b, err := io.ReadAll(res.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring(`"error":"body: not received whole within the read timeout (300ms, --read-timeout)"`))
		_, err = br.ReadByte()
		Expect(err).To(Equal(io.EOF))
	})

	It("closes a keep-alive connection idle past --idle-timeout", func() {
		c := rawConn()
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: kf\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.StatusCode).To(Equal(http.StatusOK))
		_, _ = io.Copy(io.Discard, res.Body)
		_, err = br.ReadByte()
		Expect(err).To(Equal(io.EOF))
	})

	It("does not cut long-polls or websockets", func(ctx SpecContext) {
		ws := wsDial(ctx, base, 0)
		ws.send(ctx, `{"type":"subscribe","systems":[30000142]}`)
		Expect(ws.next(ctx).Type).To(Equal("subscribed"))
		// A long-poll waits its 2 s whole, far past both timeouts.
		r := get(ctx, pollURL(base, "/api/killfeed", "patient", []int64{amarr}, "wait", "2"))
		Expect(r.Status).To(Equal(http.StatusOK))
		var p pollAnswer
		r.JSON(&p)
		Expect(p.Events).To(BeEmpty())
		// The websocket, idle all along, still delivers.
		ids := wsInsert(ctx, base, jita, 1)
		Expect(ws.killmails(ctx, 1)).To(Equal(ids))
		ws.pingPong(ctx)
	}, SpecTimeout(30*time.Second))
})
