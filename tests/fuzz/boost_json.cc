// Boost.JSON compiled from its sources, so that the fuzzers instrument (and
// are guided by) the parser too, rather than linking the uninstrumented
// libboost_json.
#include <boost/json/src.hpp>
