// Package apiclient reads lookup answers from an Akutan API server.
//
// A public lookup streams one page of its answer per call; the page's last
// message carries the token of the next page (see proto/apipb). ReadPage
// reads one page's stream; ReadAll and the Lookup functions follow the
// tokens to the end and return the whole answer, which every page read at
// the first page's index. Use them where the answer is known to be small;
// a client that may meet a large answer should page with ReadPage and
// handle each page as it comes.
package apiclient
