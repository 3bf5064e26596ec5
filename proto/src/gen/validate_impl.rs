impl ::prost_protovalidate::Validate for fog::v1::Location {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if !self.region.is_empty() {
            if self.region.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "region",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.region.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "region",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.region) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "region",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if self.zone.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "zone",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Label {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.key.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "key",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.key.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "key",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9._/-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.key) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "key",
                            "string.pattern",
                            "does not match regex pattern `^[A-Za-z0-9._/-]+$`",
                        ),
                    );
            }
        }
        if self.value.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "value",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9._-]*$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.value) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "value",
                            "string.pattern",
                            "does not match regex pattern `^[A-Za-z0-9._-]*$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Node {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.location {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("location");
                    violations.push(_viol);
                }
            }
        }
        for (_idx, _item) in self.labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::ListNodesRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if ![0i32, 1i32, 2i32, 3i32, 4i32, 5i32, 6i32].contains(&self.status) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "status",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32, 5i32].contains(&self.node_type) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_type",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if !self.region.is_empty() {
            if self.region.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "region",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.region.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "region",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.region) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "region",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if self.labels.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "labels",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        #[allow(unused_comparisons)]
        if self.page_size > 1000u32 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "page_size",
                "uint32.lte",
                "uint32.lte",
            );
            violation.set_message("value must be less than or equal to 1000");
            violations.push(violation);
        }
        if !self.page_token.is_empty() {
            if self.page_token.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "page_token",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.page_token.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "page_token",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.page_token) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "page_token",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        for (_idx, _item) in self.labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::ListNodesResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        for (_idx, _item) in self.nodes.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("nodes", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::GetNodeRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::GetNodeResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::CordonNodeRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::CordonNodeResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::UncordonNodeRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::UncordonNodeResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::DrainNodeRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::DrainNodeResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::SetMaintenanceRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::SetMaintenanceResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::RemoveNodeRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::UpdateNodeLabelsRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.node_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.node_id.chars().count() > 63usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_id",
                        "string.max_len",
                        "value length must be at most 63 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.node_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.pattern",
                            "does not match regex pattern `^[a-z0-9-]+$`",
                        ),
                    );
            }
        }
        if self.set.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "set",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        if self.remove.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "remove",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        for (_idx, _item) in self.remove.iter().enumerate() {
            let mut _local_violations: ::std::vec::Vec<
                ::prost_protovalidate::Violation,
            > = ::std::vec::Vec::new();
            {
                let violations = &mut _local_violations;
                if (*_item).chars().count() < 1usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.min_len",
                                "value length must be at least 1 characters",
                            ),
                        );
                }
                if (*_item).chars().count() > 63usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.max_len",
                                "value length must be at most 63 characters",
                            ),
                        );
                }
                {
                    static RE: ::std::sync::LazyLock<
                        ::prost_protovalidate::regex::Regex,
                    > = ::std::sync::LazyLock::new(|| {
                        ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9._/-]+$")
                            .expect("pattern validated at codegen time")
                    });
                    if !RE.is_match(&(*_item)) {
                        violations
                            .push(
                                ::prost_protovalidate::Violation::new(
                                    "",
                                    "string.pattern",
                                    "does not match regex pattern `^[A-Za-z0-9._/-]+$`",
                                ),
                            );
                    }
                }
            }
            let _idx_u64: u64 = _idx as u64;
            for mut _v in _local_violations {
                _v.prepend_rule_path("repeated.items");
                _v.prepend_index("remove", _idx_u64);
                violations.push(_v);
            }
        }
        for (_idx, _item) in self.set.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("set", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::UpdateNodeLabelsResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.node {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("node");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::CreateJoinTokenRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.ttl_seconds != 0u32 {
            #[allow(unused_comparisons)]
            if self.ttl_seconds < 60u32 || self.ttl_seconds > 604800u32 {
                let mut violation = ::prost_protovalidate::Violation::new_constraint(
                    "ttl_seconds",
                    "uint32.gte_lte",
                    "uint32.gte",
                );
                violation
                    .set_message(
                        "value must be greater than or equal to 60 and less than or equal to 604800",
                    );
                violations.push(violation);
            }
        }
        if !self.node_name.is_empty() {
            if self.node_name.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_name",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.node_name.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_name",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.node_name) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "node_name",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if self.labels.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "labels",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        for (_idx, _item) in self.labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::TaskSpec {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.name.chars().count() > 128usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "name",
                        "string.max_len",
                        "value length must be at most 128 characters",
                    ),
                );
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32].contains(&self.sla_tier) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "sla_tier",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32].contains(&self.privacy_level) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "privacy_level",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32, 5i32].contains(&self.strategy) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "strategy",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if self.affinity_key.chars().count() > 256usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "affinity_key",
                        "string.max_len",
                        "value length must be at most 256 characters",
                    ),
                );
        }
        if self.preferred_labels.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "preferred_labels",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        if self.required_labels.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "required_labels",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        if self.allowed_regions.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "allowed_regions",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        for (_idx, _item) in self.allowed_regions.iter().enumerate() {
            let mut _local_violations: ::std::vec::Vec<
                ::prost_protovalidate::Violation,
            > = ::std::vec::Vec::new();
            {
                let violations = &mut _local_violations;
                if (*_item).chars().count() < 1usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.min_len",
                                "value length must be at least 1 characters",
                            ),
                        );
                }
                if (*_item).chars().count() > 63usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.max_len",
                                "value length must be at most 63 characters",
                            ),
                        );
                }
                {
                    static RE: ::std::sync::LazyLock<
                        ::prost_protovalidate::regex::Regex,
                    > = ::std::sync::LazyLock::new(|| {
                        ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                            .expect("pattern validated at codegen time")
                    });
                    if !RE.is_match(&(*_item)) {
                        violations
                            .push(
                                ::prost_protovalidate::Violation::new(
                                    "",
                                    "string.pattern",
                                    "does not match regex pattern `^[a-z0-9-]+$`",
                                ),
                            );
                    }
                }
            }
            let _idx_u64: u64 = _idx as u64;
            for mut _v in _local_violations {
                _v.prepend_rule_path("repeated.items");
                _v.prepend_index("allowed_regions", _idx_u64);
                violations.push(_v);
            }
        }
        #[allow(unused_comparisons)]
        if self.timeout_ms > 86400000u64 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "timeout_ms",
                "uint64.lte",
                "uint64.lte",
            );
            violation.set_message("value must be less than or equal to 86400000");
            violations.push(violation);
        }
        if let ::core::option::Option::Some(ref _val) = self.max_retries {
            #[allow(unused_comparisons)]
            if (*_val) > 20u32 {
                let mut violation = ::prost_protovalidate::Violation::new_constraint(
                    "max_retries",
                    "uint32.lte",
                    "uint32.lte",
                );
                violation.set_message("value must be less than or equal to 20");
                violations.push(violation);
            }
        }
        #[allow(unused_comparisons)]
        if self.replicas > 5u32 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "replicas",
                "uint32.lte",
                "uint32.lte",
            );
            violation.set_message("value must be less than or equal to 5");
            violations.push(violation);
        }
        for (_idx, _item) in self.preferred_labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("preferred_labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        for (_idx, _item) in self.required_labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("required_labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if let ::core::option::Option::Some(ref _nested) = self.origin {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("origin");
                    violations.push(_viol);
                }
            }
        }
        if self.workload.is_none() {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                            "workload",
                            "required",
                            "workload is required",
                        )
                        .without_rule_path(),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Task {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.spec {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("spec");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::SubmitTaskRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.spec.is_none() {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "spec",
                        "required",
                        "value is required",
                    ),
                );
        }
        if self.request_id.chars().count() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "request_id",
                        "string.max_len",
                        "value length must be at most 64 characters",
                    ),
                );
        }
        if let ::core::option::Option::Some(ref _nested) = self.spec {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("spec");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::SubmitTaskResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.task {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("task");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::GetTaskRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.task_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "task_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.task_id.chars().count() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "task_id",
                        "string.max_len",
                        "value length must be at most 64 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.task_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "task_id",
                            "string.pattern",
                            "does not match regex pattern `^[A-Za-z0-9-]+$`",
                        ),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::GetTaskResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.task {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("task");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::ListTasksRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.states.len() > 6usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "states",
                        "repeated.max_items",
                        "must have at most 6 items",
                    ),
                );
        }
        for (_idx, _item) in self.states.iter().enumerate() {
            let mut _local_violations: ::std::vec::Vec<
                ::prost_protovalidate::Violation,
            > = ::std::vec::Vec::new();
            {
                let violations = &mut _local_violations;
                if ![0i32, 1i32, 2i32, 3i32, 4i32, 5i32, 6i32].contains(&(*_item)) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "enum.defined_only",
                                "value must be one of the defined enum values",
                            ),
                        );
                }
                if [0i32].contains(&(*_item)) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "enum.not_in",
                                "must not be in list [0]",
                            ),
                        );
                }
            }
            let _idx_u64: u64 = _idx as u64;
            for mut _v in _local_violations {
                _v.prepend_rule_path("repeated.items");
                _v.prepend_index("states", _idx_u64);
                violations.push(_v);
            }
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32].contains(&self.sla_tier) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "sla_tier",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if !self.node_id.is_empty() {
            if self.node_id.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.node_id.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.node_id) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "node_id",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        #[allow(unused_comparisons)]
        if self.page_size > 1000u32 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "page_size",
                "uint32.lte",
                "uint32.lte",
            );
            violation.set_message("value must be less than or equal to 1000");
            violations.push(violation);
        }
        if !self.page_token.is_empty() {
            if self.page_token.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "page_token",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.page_token.chars().count() > 64usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "page_token",
                            "string.max_len",
                            "value length must be at most 64 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.page_token) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "page_token",
                                "string.pattern",
                                "does not match regex pattern `^[A-Za-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::ListTasksResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        for (_idx, _item) in self.tasks.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("tasks", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::CancelTaskRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.task_id.chars().count() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "task_id",
                        "string.min_len",
                        "value length must be at least 1 characters",
                    ),
                );
        }
        if self.task_id.chars().count() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "task_id",
                        "string.max_len",
                        "value length must be at most 64 characters",
                    ),
                );
        }
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9-]+$")
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.task_id) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "task_id",
                            "string.pattern",
                            "does not match regex pattern `^[A-Za-z0-9-]+$`",
                        ),
                    );
            }
        }
        if self.reason.chars().count() > 256usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "reason",
                        "string.max_len",
                        "value length must be at most 256 characters",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::CancelTaskResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.task {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("task");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::WatchTasksRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.task_ids.len() > 1000usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "task_ids",
                        "repeated.max_items",
                        "must have at most 1000 items",
                    ),
                );
        }
        for (_idx, _item) in self.task_ids.iter().enumerate() {
            let mut _local_violations: ::std::vec::Vec<
                ::prost_protovalidate::Violation,
            > = ::std::vec::Vec::new();
            {
                let violations = &mut _local_violations;
                if (*_item).chars().count() < 1usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.min_len",
                                "value length must be at least 1 characters",
                            ),
                        );
                }
                if (*_item).chars().count() > 64usize {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "",
                                "string.max_len",
                                "value length must be at most 64 characters",
                            ),
                        );
                }
                {
                    static RE: ::std::sync::LazyLock<
                        ::prost_protovalidate::regex::Regex,
                    > = ::std::sync::LazyLock::new(|| {
                        ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9-]+$")
                            .expect("pattern validated at codegen time")
                    });
                    if !RE.is_match(&(*_item)) {
                        violations
                            .push(
                                ::prost_protovalidate::Violation::new(
                                    "",
                                    "string.pattern",
                                    "does not match regex pattern `^[A-Za-z0-9-]+$`",
                                ),
                            );
                    }
                }
            }
            let _idx_u64: u64 = _idx as u64;
            for mut _v in _local_violations {
                _v.prepend_rule_path("repeated.items");
                _v.prepend_index("task_ids", _idx_u64);
                violations.push(_v);
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::WatchTasksResponse {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.task {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("task");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::ExplainPlacementRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if !self.task_id.is_empty() {
            if self.task_id.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "task_id",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.task_id.chars().count() > 64usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "task_id",
                            "string.max_len",
                            "value length must be at most 64 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[A-Za-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.task_id) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "task_id",
                                "string.pattern",
                                "does not match regex pattern `^[A-Za-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        #[allow(unused_comparisons)]
        if self.limit > 1000u32 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "limit",
                "uint32.lte",
                "uint32.lte",
            );
            violation.set_message("value must be less than or equal to 1000");
            violations.push(violation);
        }
        if let ::core::option::Option::Some(ref _nested) = self.spec {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("spec");
                    violations.push(_viol);
                }
            }
        }
        {
            let mut _oneof_count = 0u32;
            if self.spec.is_some() {
                _oneof_count += 1;
            }
            if !self.task_id.is_empty() {
                _oneof_count += 1;
            }
            if _oneof_count > 1 {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                                "",
                                "message.oneof",
                                "only one of spec, task_id can be set",
                            )
                            .without_rule_path(),
                    );
            }
            if _oneof_count == 0 {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                                "",
                                "message.oneof",
                                "one of spec, task_id must be set",
                            )
                            .without_rule_path(),
                    );
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::JoinRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        {
            static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
            {
                ::prost_protovalidate::regex::Regex::new(
                        "^[\\s\\pZ\\x0B\\x{85}]*FOG1[0-9a-f]{64}::[0-9a-f]{16}\\.[0-9a-f]{64}[\\s\\pZ\\x0B\\x{85}]*$",
                    )
                    .expect("pattern validated at codegen time")
            });
            if !RE.is_match(&self.token) {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "token",
                            "string.pattern",
                            "does not match regex pattern `^[\\s\\pZ\\x0B\\x{85}]*FOG1[0-9a-f]{64}::[0-9a-f]{16}\\.[0-9a-f]{64}[\\s\\pZ\\x0B\\x{85}]*$`",
                        ),
                    );
            }
        }
        if self.csr_der.len() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "csr_der",
                        "bytes.min_len",
                        "value length must be at least 1 bytes",
                    ),
                );
        }
        if self.csr_der.len() > 16384usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "csr_der",
                        "bytes.max_len",
                        "value length must be at most 16384 bytes",
                    ),
                );
        }
        if !self.node_name.is_empty() {
            if self.node_name.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_name",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.node_name.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_name",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.node_name) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "node_name",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Hello {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if !self.node_id.is_empty() {
            if self.node_id.chars().count() < 1usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.min_len",
                            "value length must be at least 1 characters",
                        ),
                    );
            }
            if self.node_id.chars().count() > 63usize {
                violations
                    .push(
                        ::prost_protovalidate::Violation::new(
                            "node_id",
                            "string.max_len",
                            "value length must be at most 63 characters",
                        ),
                    );
            }
            {
                static RE: ::std::sync::LazyLock<::prost_protovalidate::regex::Regex> = ::std::sync::LazyLock::new(||
                {
                    ::prost_protovalidate::regex::Regex::new("^[a-z0-9-]+$")
                        .expect("pattern validated at codegen time")
                });
                if !RE.is_match(&self.node_id) {
                    violations
                        .push(
                            ::prost_protovalidate::Violation::new(
                                "node_id",
                                "string.pattern",
                                "does not match regex pattern `^[a-z0-9-]+$`",
                            ),
                        );
                }
            }
        }
        if self.name.chars().count() > 128usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "name",
                        "string.max_len",
                        "value length must be at most 128 characters",
                    ),
                );
        }
        if ![0i32, 1i32, 2i32, 3i32, 4i32, 5i32].contains(&self.node_type) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "node_type",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if self.capacity.is_none() {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "capacity",
                        "required",
                        "value is required",
                    ),
                );
        }
        if self.labels.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "labels",
                        "repeated.max_items",
                        "must have at most 64 items",
                    ),
                );
        }
        if self.agent_version.chars().count() > 128usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "agent_version",
                        "string.max_len",
                        "value length must be at most 128 characters",
                    ),
                );
        }
        if self.running.len() > 10000usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "running",
                        "repeated.max_items",
                        "must have at most 10000 items",
                    ),
                );
        }
        if let ::core::option::Option::Some(ref _nested) = self.location {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("location");
                    violations.push(_viol);
                }
            }
        }
        for (_idx, _item) in self.labels.iter().enumerate() {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _item,
            ) {
                let _idx_u64: u64 = _idx as u64;
                for mut _viol in _e.into_violations() {
                    _viol.prepend_index("labels", _idx_u64);
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Heartbeat {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.running.len() > 10000usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "running",
                        "repeated.max_items",
                        "must have at most 10000 items",
                    ),
                );
        }
        if self.region_rtt_ms.len() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "region_rtt_ms",
                        "map.max_pairs",
                        "must have at most 64 entries",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::TaskUpdate {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.attempt.is_none() {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "attempt",
                        "required",
                        "value is required",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::TaskResult {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.attempt.is_none() {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "attempt",
                        "required",
                        "value is required",
                    ),
                );
        }
        if self.traceparent.chars().count() > 128usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "traceparent",
                        "string.max_len",
                        "value length must be at most 128 characters",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::RenewCertificate {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if self.csr_der.len() < 1usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "csr_der",
                        "bytes.min_len",
                        "value length must be at least 1 bytes",
                    ),
                );
        }
        if self.csr_der.len() > 16384usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "csr_der",
                        "bytes.max_len",
                        "value length must be at most 16384 bytes",
                    ),
                );
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::Assignment {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if let ::core::option::Option::Some(ref _nested) = self.spec {
            if let ::core::result::Result::Err(_e) = ::prost_protovalidate::Validate::validate(
                _nested,
            ) {
                for mut _viol in _e.into_violations() {
                    _viol.prepend_field_path("spec");
                    violations.push(_viol);
                }
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::WatchTopologyRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        if ![0i32, 1i32, 2i32, 3i32].contains(&self.detail) {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "detail",
                        "enum.defined_only",
                        "value must be one of the defined enum values",
                    ),
                );
        }
        if self.epoch.chars().count() > 64usize {
            violations
                .push(
                    ::prost_protovalidate::Violation::new(
                        "epoch",
                        "string.max_len",
                        "value length must be at most 64 characters",
                    ),
                );
        }
        if self.metrics_interval_ms != 0u32 {
            #[allow(unused_comparisons)]
            if self.metrics_interval_ms < 100u32 || self.metrics_interval_ms > 3600000u32
            {
                let mut violation = ::prost_protovalidate::Violation::new_constraint(
                    "metrics_interval_ms",
                    "uint32.gte_lte",
                    "uint32.gte",
                );
                violation
                    .set_message(
                        "value must be greater than or equal to 100 and less than or equal to 3600000",
                    );
                violations.push(violation);
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
impl ::prost_protovalidate::Validate for fog::v1::GetTopologyHistoryRequest {
    fn validate(
        &self,
    ) -> ::core::result::Result<(), ::prost_protovalidate::ValidationError> {
        let mut violations = ::std::vec::Vec::new();
        #[allow(unused_comparisons)]
        if self.limit > 100u32 {
            let mut violation = ::prost_protovalidate::Violation::new_constraint(
                "limit",
                "uint32.lte",
                "uint32.lte",
            );
            violation.set_message("value must be less than or equal to 100");
            violations.push(violation);
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(::prost_protovalidate::ValidationError::new(violations))
        }
    }
}
