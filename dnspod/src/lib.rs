//! `gtm-dnspod`: the authoritative DNS half of kube-gtm. It reads the config contract of
//! [`gtm_crds::config`] and answers access domains with what policy and health allow.
