package killmail_test

import (
	"fmt"

	"github.com/killfeed/killfeed/killmail"
)

// A killmail holding bytes that are not UTF-8 is refused with the JSON path
// of the string at fault, whichever wire format carried it.
func ExampleCheck() {
	_, err := killmail.Parse([]byte("{\"killmail_id\":1,\"solar_system_id\":30000142,\"victim\":{\"items\":[{},{\"name\":\"\xff\"}]}}"))
	fmt.Println(err)
	_, err = killmail.Parse([]byte(`{"esi":{"killmail_id":1,"solar_system_id":30000142,"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`))
	fmt.Println(err)
	fmt.Println(killmail.Check([]byte(`{"name":"Jita 4-4 – 日本"}`)))
	// Output:
	// killmail.victim.items[1].name: string is not valid UTF-8
	// killmail.esi.x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 32 levels
	// <nil>
}
